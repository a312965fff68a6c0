"""``qrgate admin``: operators' commands, run against the configured database directly.

Every change is audited like an API call (actor ``cli``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy import Connection

from qrgate import keystore
from qrgate.accounts import directory
from qrgate.config import Settings
from qrgate.core.policy import AppPolicy
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import QrgateError
from qrgate.runtime import Runtime, build_runtime

T = TypeVar("T")


@contextmanager
def _runtime() -> Iterator[Runtime]:
    rt = build_runtime(Settings.from_env())
    try:
        yield rt
    except QrgateError as error:
        click.echo(f"error: {error.code}: {error.detail}", err=True)
        raise SystemExit(2) from None
    finally:
        rt.close()


def _change(rt: Runtime, event: str, work: Callable[[Connection], T], **subject: Any) -> T:
    audit_subject = AuditSubject(event=event, detail={"actor": "cli"}, **subject)
    return run_decision(rt, subject=audit_subject, now=rt.clock(),
                        work=lambda conn: (work(conn), "admin"))


def _echo(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
def admin() -> None:
    """Organisations, applications, API keys, users, devices, keys."""


# --- organisations and applications ------------------------------------------------------


@admin.group()
def org() -> None:
    """Organisations."""


@org.command("create")
@click.argument("slug")
@click.option("--name", required=True)
def org_create(slug: str, name: str) -> None:
    with _runtime() as rt:
        org_id = _change(rt, "admin.org_create", lambda conn: directory.create_org(
            conn, slug=slug, name=name, now=rt.clock()))
        _echo({"org_id": org_id, "slug": slug})


@admin.group()
def app() -> None:
    """Applications (a relying party's business ids)."""


@app.command("create")
@click.option("--org", "org_slug", required=True)
@click.option("--business-id", required=True)
@click.option("--name", required=True)
@click.option("--origin", default=None, help="The web origin shown to users on their phone.")
@click.option("--policy", "policy_json", default="{}",
              help='Policy JSON, e.g. {"number_matching": "always"}.')
def app_create(org_slug: str, business_id: str, name: str, origin: str | None,
               policy_json: str) -> None:
    policy = _policy(policy_json)
    with _runtime() as rt:
        def work(conn: Connection) -> int:
            org_id = directory.org_id_by_slug(conn, org_slug)
            return directory.create_app(conn, org_id=org_id, business_id=business_id, name=name,
                                        origin=origin, policy=policy, now=rt.clock())

        _echo({"app_id": _change(rt, "admin.app_create", work), "business_id": business_id})


@app.command("policy")
@click.option("--org", "org_slug", required=True)
@click.option("--business-id", required=True)
@click.argument("policy_json")
def app_policy(org_slug: str, business_id: str, policy_json: str) -> None:
    """Replace an application's policy (JSON; see README for the keys)."""
    policy = _policy(policy_json)
    with _runtime() as rt:
        def work(conn: Connection) -> None:
            app_id = directory.app_id_by_business_id(
                conn, org_id=directory.org_id_by_slug(conn, org_slug), business_id=business_id)
            directory.set_app_policy(conn, app_id=app_id, policy=policy)

        _change(rt, "admin.app_policy", work)
        _echo(policy.to_dict())


def _policy(raw: str) -> AppPolicy:
    try:
        data = json.loads(raw)
    except ValueError:
        raise click.BadParameter("policy must be JSON") from None
    if not isinstance(data, dict):
        raise click.BadParameter("policy must be a JSON object")
    try:
        return AppPolicy.from_dict(data)
    except QrgateError as error:
        raise click.BadParameter(error.detail) from None


@admin.group("apikey")
def apikey() -> None:
    """API keys of applications (shown once, stored hashed)."""


@apikey.command("create")
@click.option("--org", "org_slug", required=True)
@click.option("--business-id", required=True)
@click.option("--label", default="")
def apikey_create(org_slug: str, business_id: str, label: str) -> None:
    with _runtime() as rt:
        def work(conn: Connection) -> str:
            app_id = directory.app_id_by_business_id(
                conn, org_id=directory.org_id_by_slug(conn, org_slug), business_id=business_id)
            return directory.create_api_key(conn, app_id=app_id, label=label, now=rt.clock())

        key = _change(rt, "admin.apikey_create", work)
        click.echo(key)


@apikey.command("revoke")
@click.argument("prefix")
def apikey_revoke(prefix: str) -> None:
    with _runtime() as rt:
        _change(rt, "admin.apikey_revoke",
                lambda conn: directory.revoke_api_key(conn, prefix=prefix, now=rt.clock()))
        _echo({"revoked": prefix})


# --- users and devices -------------------------------------------------------------------


@admin.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.option("--org", "org_slug", required=True)
@click.option("--login", required=True)
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the user's password from stdin.")
def user_create(org_slug: str, login: str, display_name: str, password_stdin: bool) -> None:
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _runtime() as rt:
        user_id = _change(rt, "user.create", lambda conn: directory.create_user(
            conn, org_id=directory.org_id_by_slug(conn, org_slug), login=login,
            display_name=display_name, password=password, now=rt.clock()))
        _echo({"user_id": user_id, "login": login})


@user.command("list")
@click.option("--org", "org_slug", required=True)
def user_list(org_slug: str) -> None:
    with _runtime() as rt, rt.read() as conn:
        users = directory.list_users(conn, org_id=directory.org_id_by_slug(conn, org_slug))
        _echo([{"login": u.login, "display_name": u.display_name, "frozen": u.frozen,
                "has_totp": u.has_totp, "preferred_verifier": u.preferred_verifier}
               for u in users])


def _set_user_frozen(org_slug: str, login: str, frozen: bool) -> None:
    with _runtime() as rt:
        def work(conn: Connection) -> None:
            found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                        login=login)
            directory.set_frozen(conn, user_id=found.id, frozen=frozen, now=rt.clock())

        _change(rt, "user.freeze" if frozen else "user.unfreeze", work)
        _echo({"login": login, "frozen": frozen})


@user.command("freeze")
@click.option("--org", "org_slug", required=True)
@click.option("--login", required=True)
def user_freeze(org_slug: str, login: str) -> None:
    """Block every new challenge and decision for the user (a lost phone)."""
    _set_user_frozen(org_slug, login, True)


@user.command("unfreeze")
@click.option("--org", "org_slug", required=True)
@click.option("--login", required=True)
def user_unfreeze(org_slug: str, login: str) -> None:
    _set_user_frozen(org_slug, login, False)


@admin.group()
def device() -> None:
    """Bound devices."""


@device.command("list")
@click.option("--org", "org_slug", required=True)
@click.option("--login", required=True)
def device_list(org_slug: str, login: str) -> None:
    with _runtime() as rt, rt.read() as conn:
        found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                    login=login)
        _echo([{"device_id": d.id, "name": d.name, "status": d.status,
                "client_app_id": d.client_app_id, "created_at": d.created_at}
               for d in directory.list_devices(conn, user_id=found.id)])


@device.command("unbind")
@click.argument("device_id")
def device_unbind(device_id: str) -> None:
    with _runtime() as rt:
        _change(rt, "device.unbind", lambda conn: directory.unbind_device(
            conn, device_id=device_id, now=rt.clock()), device_id=device_id)
        _echo({"device_id": device_id, "status": "unbound"})


@device.command("freeze")
@click.argument("device_id")
def device_freeze(device_id: str) -> None:
    with _runtime() as rt:
        _change(rt, "device.freeze", lambda conn: directory.set_device_frozen(
            conn, device_id=device_id, frozen=True), device_id=device_id)
        _echo({"device_id": device_id, "status": "frozen"})


@device.command("unfreeze")
@click.argument("device_id")
def device_unfreeze(device_id: str) -> None:
    with _runtime() as rt:
        _change(rt, "device.unfreeze", lambda conn: directory.set_device_frozen(
            conn, device_id=device_id, frozen=False), device_id=device_id)
        _echo({"device_id": device_id, "status": "active"})


# --- signing keys ----------------------------------------------------------------------


@admin.group()
def keys() -> None:
    """Code-signing keys in the data directory (rotation keeps old kids verifying)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new active key; the old one keeps verifying until retired."""
    settings = Settings.from_env()
    kid = keystore.rotate(settings.data_dir, now=time.time())
    _echo({"active_kid": kid.hex()})


@keys.command("retire")
@click.argument("kid_hex")
def keys_retire(kid_hex: str) -> None:
    """Stop accepting codes signed by this key id."""
    settings = Settings.from_env()
    try:
        keystore.retire(settings.data_dir, bytes.fromhex(kid_hex))
    except (ValueError, QrgateError) as error:
        raise click.ClickException(str(error)) from None
    _echo({"retired": kid_hex})


@keys.command("list")
def keys_list() -> None:
    settings = Settings.from_env()
    material = keystore.load_or_create(settings.data_dir, env=settings.env)
    ring = material.keyring
    _echo({"active": ring.active_kid.hex(),
           "verifying": sorted(kid.hex() for kid in ring.public_keys())})
