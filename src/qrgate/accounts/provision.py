"""Set up an organisation, an application with an API key, and users in one go (demos,
benchmarks, first-run scripts). The same calls as ``qrgate admin``."""

from __future__ import annotations

from dataclasses import dataclass

from qrgate.accounts import directory
from qrgate.core.passwords import new_password_hash
from qrgate.core.policy import AppPolicy
from qrgate.runtime import Runtime


@dataclass(frozen=True, kw_only=True)
class Provisioned:
    org_id: int
    app_id: int
    api_key: str


def provision(
    rt: Runtime,
    *,
    org_slug: str,
    org_name: str,
    business_id: str,
    app_name: str,
    origin: str | None = None,
    policy: AppPolicy | None = None,
    users: dict[str, str | None] | None = None,
) -> Provisioned:
    """``users`` maps login to password (or None for a user without one)."""
    now = rt.clock()
    with rt.engine.begin() as conn:
        org_id = directory.create_org(conn, slug=org_slug, name=org_name, now=now)
        app_id = directory.create_app(conn, org_id=org_id, business_id=business_id,
                                      name=app_name, origin=origin,
                                      policy=policy or AppPolicy(), now=now)
        api_key = directory.create_api_key(conn, digests=rt.digests, app_id=app_id,
                                           label="provisioned", now=now)
        for login, password in (users or {}).items():
            directory.create_user(conn, org_id=org_id, login=login, now=now,
                                  password_hash=password and new_password_hash(password))
    return Provisioned(org_id=org_id, app_id=app_id, api_key=api_key)
