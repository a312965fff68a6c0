"""``qrgate admin``: operators' commands, run against the configured database directly.

Every change is audited like an API call (actor ``cli``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qrgate.cli.failures import Failure, cannot_write
from qrgate.cli.output import utc_time
from qrgate.cli.runtime import configured_runtime
from qrgate.cli.webhook import webhook
from qrgate.config import Settings

# The database and crypto modules are imported inside the commands that use them, so that
# `qrgate admin --help` does not load them.
if TYPE_CHECKING:
    from sqlalchemy import Connection

    from qrgate.core.policy import AppPolicy
    from qrgate.keys import Rotation
    from qrgate.runtime import Runtime

T = TypeVar("T")


def _change(rt: Runtime, event: str, work: Callable[[Connection], T], **subject: Any) -> T:
    from qrgate.decisions import AuditSubject, run_decision

    audit_subject = AuditSubject(event=event, detail={"actor": "cli"}, **subject)
    return run_decision(rt, subject=audit_subject, now=rt.clock(),
                        work=lambda conn: (work(conn), "admin"))


def _echo(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
def admin() -> None:
    """Organisations, applications, API keys, users, devices, keys, webhooks."""


# Its own module (it imports only click at the top, like this one).
admin.add_command(webhook)


# --- organisations and applications ------------------------------------------------------


@admin.group()
def org() -> None:
    """Organisations."""


@org.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The organisation's display name.")
def org_create(slug: str, name: str) -> None:
    """Create an organisation; SLUG names it in every other command."""
    from qrgate.accounts import directory

    with configured_runtime() as rt:
        org_id = _change(rt, "admin.org_create", lambda conn: directory.create_org(
            conn, slug=slug, name=name, now=rt.clock()))
        _echo({"org_id": org_id, "slug": slug})


@admin.group()
def app() -> None:
    """Applications (a relying party's business ids)."""


@app.command("create")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--business-id", required=True, help="The application's business id.")
@click.option("--name", required=True, help="The application's display name.")
@click.option("--origin", default=None, help="The web origin shown to users on their phone.")
@click.option("--policy", "policy_json", default="{}",
              help='Policy JSON, e.g. {"number_matching": "always"}.')
def app_create(org_slug: str, business_id: str, name: str, origin: str | None,
               policy_json: str) -> None:
    """Register an application (a business id) of an organisation."""
    from qrgate.accounts import directory

    policy = _policy(policy_json)
    with configured_runtime() as rt:
        def work(conn: Connection) -> int:
            org_id = directory.org_id_by_slug(conn, org_slug)
            return directory.create_app(conn, org_id=org_id, business_id=business_id, name=name,
                                        origin=origin, policy=policy, now=rt.clock())

        _echo({"app_id": _change(rt, "admin.app_create", work), "business_id": business_id})


@app.command("policy")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--business-id", required=True, help="The application's business id.")
@click.argument("policy_json")
def app_policy(org_slug: str, business_id: str, policy_json: str) -> None:
    """Replace an application's policy (JSON; see README for the keys)."""
    from qrgate.accounts import directory

    policy = _policy(policy_json)
    with configured_runtime() as rt:
        def work(conn: Connection) -> None:
            app_id = directory.app_id_by_business_id(
                conn, org_id=directory.org_id_by_slug(conn, org_slug), business_id=business_id)
            directory.set_app_policy(conn, app_id=app_id, policy=policy)

        _change(rt, "admin.app_policy", work)
        _echo(policy.to_dict())


def _policy(raw: str) -> AppPolicy:
    from qrgate.core.policy import AppPolicy
    from qrgate.errors import QrgateError

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
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--business-id", required=True, help="The application's business id.")
@click.option("--label", default="", help="A note telling this key from the others.")
def apikey_create(org_slug: str, business_id: str, label: str) -> None:
    """Issue an API key for an application: printed once, stored hashed."""
    from qrgate.accounts import directory

    with configured_runtime() as rt:
        def work(conn: Connection) -> str:
            app_id = directory.app_id_by_business_id(
                conn, org_id=directory.org_id_by_slug(conn, org_slug), business_id=business_id)
            return directory.create_api_key(conn, digests=rt.digests, app_id=app_id,
                                            label=label, now=rt.clock())

        key = _change(rt, "admin.apikey_create", work)
        click.echo(key)


@apikey.command("revoke")
@click.argument("prefix")
def apikey_revoke(prefix: str) -> None:
    """Revoke an API key by its prefix (every node stops accepting it within a second)."""
    from qrgate.accounts import directory

    with configured_runtime() as rt:
        _change(rt, "admin.apikey_revoke",
                lambda conn: directory.revoke_api_key(conn, prefix=prefix, now=rt.clock()))
        _echo({"revoked": prefix})


# --- users and devices -------------------------------------------------------------------


@admin.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
@click.option("--display-name", default="", help="The name shown for the user.")
@click.option("--password-stdin", is_flag=True, help="Read the user's password from stdin.")
def user_create(org_slug: str, login: str, display_name: str, password_stdin: bool) -> None:
    """Create a user of an organisation (with a password, read from stdin, if given)."""
    from qrgate.accounts import directory
    from qrgate.core.passwords import new_password_hash

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    password_hash = None if not password else new_password_hash(password)
    with configured_runtime() as rt:
        user_id = _change(rt, "user.create", lambda conn: directory.create_user(
            conn, org_id=directory.org_id_by_slug(conn, org_slug), login=login,
            display_name=display_name, password_hash=password_hash, now=rt.clock()))
        _echo({"user_id": user_id, "login": login})


@user.command("list")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
def user_list(org_slug: str) -> None:
    """List an organisation's users (JSON)."""
    from qrgate.accounts import directory

    with configured_runtime() as rt, rt.read() as conn:
        users = directory.list_users(conn, org_id=directory.org_id_by_slug(conn, org_slug))
        _echo([{"login": u.login, "display_name": u.display_name, "frozen": u.frozen,
                "has_totp": u.has_totp, "preferred_verifier": u.preferred_verifier,
                "blocked_until": None if u.blocked_until is None else utc_time(u.blocked_until)}
               for u in users])


def _set_user_frozen(org_slug: str, login: str, frozen: bool) -> None:
    from qrgate.accounts import directory

    with configured_runtime() as rt:
        def work(conn: Connection) -> None:
            from qrgate.freeze import set_user_frozen

            found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                        login=login)
            set_user_frozen(rt, conn, user_id=found.id, frozen=frozen, now=rt.clock())

        _change(rt, "user.freeze" if frozen else "user.unfreeze", work)
        _echo({"login": login, "frozen": frozen})


@user.command("freeze")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def user_freeze(org_slug: str, login: str) -> None:
    """Stop every decision of the user at once (a lost phone); open ones end now."""
    _set_user_frozen(org_slug, login, True)


@user.command("unfreeze")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def user_unfreeze(org_slug: str, login: str) -> None:
    """Lift a freeze; also clears the user's count of failed proofs (user_locked)."""
    _set_user_frozen(org_slug, login, False)


@user.command("unblock")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def user_unblock(org_slug: str, login: str) -> None:
    """Lift the pause on new challenges that a "this wasn't me" report started."""
    from qrgate.accounts import directory, reports

    with configured_runtime() as rt:
        def work(conn: Connection) -> None:
            found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                        login=login)
            reports.unblock(conn, user_id=found.id)

        _change(rt, "user.unblock", work)
        _echo({"login": login, "blocked_until": None})


@user.command("access-pass")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
@click.option("--ttl", type=click.IntRange(300, 604_800), default=None,
              help="Seconds the pass lives (default QRGATE_ACCESS_PASS_TTL).")
@click.option("--keep-devices", is_flag=True,
              help="Keep the user's other devices (by default the new phone replaces them).")
def user_access_pass(org_slug: str, login: str, ttl: int | None, keep_devices: bool) -> None:
    """Lost phone: a one-time pass to enrol a new phone with, printed once. It ends the
    user's earlier unused passes."""
    from qrgate.accounts import access_passes, directory
    from qrgate.decisions import AuditSubject, run_decision

    with configured_runtime() as rt:
        now = rt.clock()
        subject = AuditSubject(event="device.access_pass_issue", scheme="confirm",
                               detail={"actor": "cli"})

        def work(conn: Connection) -> tuple[access_passes.IssuedPass, str]:
            found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                        login=login)
            subject.org_id, subject.user_id = found.org_id, found.id
            issued = access_passes.issue_pass(
                conn, digests=rt.digests, user=found, issued_by="operator", app_id=None,
                revoke_devices=not keep_devices, now=now,
                ttl=ttl or rt.settings.access_pass_ttl)
            subject.detail.update(access_pass_id=issued.access_pass_id,
                                  revoke_devices=issued.revoke_devices,
                                  expires_at=issued.expires_at)
            return issued, "issued"

        issued = run_decision(rt, subject=subject, now=now, work=work)
        _echo({"login": login, "access_pass": issued.access_pass,
               "access_pass_id": issued.access_pass_id,
               "expires_at": utc_time(issued.expires_at),
               "revoke_devices": issued.revoke_devices})


@admin.group()
def device() -> None:
    """Bound devices."""


@device.command("list")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def device_list(org_slug: str, login: str) -> None:
    """List a user's devices (JSON; times in UTC)."""
    from qrgate.accounts import directory

    with configured_runtime() as rt, rt.read() as conn:
        found = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                    login=login)
        _echo([{"device_id": d.id, "name": d.name, "status": d.status,
                "client_app_id": d.client_app_id, "created_at": utc_time(d.created_at)}
               for d in directory.list_devices(conn, user_id=found.id)])


@device.command("unbind")
@click.argument("device_id")
def device_unbind(device_id: str) -> None:
    """Unbind a device for good: the phone must enrol again."""
    from qrgate.accounts import device_changes
    from qrgate.webhooks.catalogue import DeviceChange

    with configured_runtime() as rt:
        _change(rt, "device.unbind", lambda conn: device_changes.unbind(
            rt, conn, device_id=device_id, by=DeviceChange.OPERATOR, now=rt.clock()),
            device_id=device_id)
        _echo({"device_id": device_id, "status": "unbound"})


@device.command("freeze")
@click.argument("device_id")
def device_freeze(device_id: str) -> None:
    """Suspend a device until it is unfrozen."""
    _set_device_frozen(device_id, True)
    _echo({"device_id": device_id, "status": "frozen"})


@device.command("unfreeze")
@click.argument("device_id")
def device_unfreeze(device_id: str) -> None:
    """Reactivate a frozen device."""
    _set_device_frozen(device_id, False)
    _echo({"device_id": device_id, "status": "active"})


def _set_device_frozen(device_id: str, frozen: bool) -> None:
    from qrgate.accounts import device_changes
    from qrgate.webhooks.catalogue import DeviceChange

    with configured_runtime() as rt:
        _change(rt, "device.freeze" if frozen else "device.unfreeze",
                lambda conn: device_changes.set_frozen(
                    rt, conn, device_id=device_id, frozen=frozen, by=DeviceChange.OPERATOR,
                    now=rt.clock()), device_id=device_id)


# --- signing keys ----------------------------------------------------------------------


@admin.group()
def keys() -> None:
    """Code-signing keys, kept in the database and shared by every node.

    A rotation or retirement reaches running servers without a restart: at once through
    PostgreSQL notifications, else within QRGATE_KEY_REFRESH_SECONDS. See docs/keys.md.
    """


def rotate_keys(rt: Runtime) -> Rotation:
    """``keys rotate`` on ``rt``'s database: one transaction, audited, and announced."""
    from qrgate.decisions import AuditSubject, run_decision

    subject = AuditSubject(event="admin.keys_rotate", detail={"actor": "cli"})
    now = rt.clock()

    def work(conn: Connection) -> tuple[Rotation, str]:
        rotation = rt.keys.rotate(conn, now=now)
        subject.detail.update(active_kid=rotation.active_kid.hex(),
                              previous_kid=rotation.previous_kid.hex())
        return rotation, "admin"

    return run_decision(rt, subject=subject, now=now, work=work)


def retire_key(rt: Runtime, kid: bytes) -> bool:
    """``keys retire`` on ``rt``'s database; False if the key was retired already."""
    from qrgate.decisions import AuditSubject, run_decision

    subject = AuditSubject(event="admin.keys_retire", detail={"actor": "cli", "kid": kid.hex()})
    now = rt.clock()
    return run_decision(rt, subject=subject, now=now,
                        work=lambda conn: (rt.keys.retire(conn, kid=kid, now=now), "admin"))


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new active key; the old one keeps verifying until retired."""
    with configured_runtime() as rt:
        rotation = rotate_keys(rt)
    _echo({"active_kid": rotation.active_kid.hex(),
           "previous_kid": rotation.previous_kid.hex()})


@keys.command("retire")
@click.argument("kid_hex", metavar="KID")
def keys_retire(kid_hex: str) -> None:
    """Stop accepting codes signed by key KID (hex, as keys list shows it).

    Audit checkpoints it signed still verify. The active key cannot be retired."""
    try:
        kid = bytes.fromhex(kid_hex)
    except ValueError:
        kid = b""
    if len(kid) != 8:
        raise click.BadParameter("a key id is 16 hex digits, as keys list shows it",
                                 param_hint="KID")
    with configured_runtime() as rt:
        changed = retire_key(rt, kid)
    _echo({"retired": kid_hex.lower(), "changed": changed})


@keys.command("list")
def keys_list() -> None:
    """Show every key: its id, state (active, verify, retired) and dates."""
    with configured_runtime() as rt:
        infos = rt.keys.describe()
        active = rt.keyring.active_kid
    _echo({"active": active.hex(), "keys": [
        {"kid": info.kid.hex(), "state": info.state.value,
         "created_at": None if info.created_at is None else utc_time(info.created_at),
         "retired_at": None if info.retired_at is None else utc_time(info.retired_at),
         "source": info.source,
         # A row sealed under another KEK: planted, or a node with the wrong KEK wrote it.
         **({} if info.trusted else {"trusted": False})}
        for info in infos]})


@keys.command("kek-create")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
def keys_kek_create(path: Path) -> None:
    """Write a new key-encryption key to FILE (mode 0600), for QRGATE_KEK_FILE.

    By default the KEK sits in the data directory, beside the SQLite database whose secrets
    it encrypts: whoever copies one has both. In production keep it elsewhere (another
    volume, a secrets mount) and point QRGATE_KEK_FILE at it. FILE is never overwritten.

    For a new deployment only: secrets already stored stay encrypted with the KEK in use, so
    to move that KEK out of the data directory, move its file (keys/kek) instead.
    """
    import secrets
    import shlex

    from qrgate import keystore
    from qrgate.core.aead import KEY_LEN

    settings = Settings.from_env()
    in_use = settings.env.get(keystore.ENV_KEK_FILE) or (
        settings.data_dir / keystore.KEYS_DIR / keystore.KEK_FILE)
    if Path(in_use).exists():
        click.echo(f"qrgate: warning: {in_use} is the KEK in use; a new one would leave the "
                   "secrets stored with it unreadable (move that file instead)", err=True)
    # 64 hex characters, a form keystore reads back (it also takes 32 raw bytes).
    _create_secret_file(path, secrets.token_bytes(KEY_LEN).hex().encode("ascii") + b"\n")
    # Absolute: the server may well start in another directory.
    click.echo(f"{keystore.ENV_KEK_FILE}={shlex.quote(str(path.resolve()))}")


def _create_secret_file(path: Path, content: bytes) -> None:
    """Create ``path`` holding ``content``, mode 0600, or fail if anything is there already.

    O_CREAT|O_EXCL checks and creates in one step: neither a file created meanwhile nor a
    symlink planted at ``path`` can be overwritten. The data is fsynced, and the directory
    entry too, before the command reports the file as ready; a file that could not be
    written whole is removed, as a truncated key would only be refused later.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise Failure(f"{path} already exists; it is never overwritten") from None
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as file:
            # Exactly 0600: a strict umask (say 0277) would leave the server unable to read it.
            os.fchmod(file.fileno(), 0o600)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise cannot_write(path, error) from None
