"""``qrgate txsign``: enrol OCRA tokens and verify chain QR codes (scheme E)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qrgate.cli.failures import Failure, cannot_write, explain, failure_types, read_file
from qrgate.cli.output import utc_time
from qrgate.config import Settings

if TYPE_CHECKING:
    from qrgate.core.keyring import PublicKeySet
    from qrgate.core.txsign import Chain, Link, TransactionText


@click.group()
def txsign() -> None:
    """Scheme E: transactions signed by OCRA tokens, chained through QR codes."""


@txsign.group()
def token() -> None:
    """OCRA tokens (one per user, paired with its server record)."""


@token.command("enrol")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--business-id", required=True, help="The application enrolling the token.")
@click.option("--login", required=True, help="The user's login.")
@click.option("--suite", default=None,
              help="OCRA suite (default: OCRA-1:HOTP-SHA256-8:C-QH64).")
@click.option("--png", "png_path", type=click.Path(path_type=Path), default=None,
              help="Write the enrolment QR (it carries the token secret once) here.")
def token_enrol(org_slug: str, business_id: str, login: str, suite: str | None,
                png_path: Path | None) -> None:
    """Create a user's token; print its enrolment code (and write it as a QR image)."""
    from qrgate.accounts import directory
    from qrgate.http.routes_txsign import enrol_token
    from qrgate.qrimage import render_png
    from qrgate.runtime import build_runtime

    rt = build_runtime(Settings.from_env())
    try:
        with rt.read() as conn:
            org_id = directory.org_id_by_slug(conn, org_slug)
            app = directory.get_app(conn, directory.app_id_by_business_id(
                conn, org_id=org_id, business_id=business_id))
        enrolment = enrol_token(rt, app=app, login=login, suite=suite)
    finally:
        rt.close()
    if png_path is not None:
        try:
            # The image carries the token secret: never readable by others, not even briefly.
            fd = os.open(png_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(render_png(enrolment.code))
        except OSError as error:
            raise cannot_write(png_path, error) from None
    click.echo(f"token {enrolment.token_id} ({enrolment.suite}) for {login}, "
               f"enrolment valid until {utc_time(enrolment.expires_at)}")
    click.echo(enrolment.code)


@token.command("list")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def token_list(org_slug: str, login: str) -> None:
    """A user's tokens and their state."""
    from qrgate.accounts import directory
    from qrgate.runtime import build_runtime
    from qrgate.txsign import tokens

    rt = build_runtime(Settings.from_env())
    try:
        with rt.read() as conn:
            user = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                       login=login)
            for record in tokens.list_tokens(conn, user_id=user.id):
                click.echo(f"{record.id} {record.status:<8} {record.suite} "
                           f"counter={record.counter} failures={record.failures}")
    finally:
        rt.close()


def _set_status(token_id: str, status: str) -> None:
    from sqlalchemy import Connection

    from qrgate.decisions import AuditSubject, run_decision
    from qrgate.runtime import build_runtime
    from qrgate.txsign import tokens

    rt = build_runtime(Settings.from_env())
    try:
        subject = AuditSubject(event=f"txsign.token_{status}", scheme="txsign",
                               detail={"actor": "cli", "token_id": token_id})
        def work(conn: Connection) -> tuple[None, str]:
            tokens.set_status(conn, token_id=token_id, status=status)
            return None, "admin"

        run_decision(rt, subject=subject, now=rt.clock(), work=work)
    finally:
        rt.close()
    click.echo(f"token {token_id}: {status}")


@token.command("unlock")
@click.argument("token_id")
def token_unlock(token_id: str) -> None:
    """Reactivate a token locked after repeated failures (resets its failure count)."""
    _set_status(token_id, "active")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token for good (a lost phone); the user can then enrol a new one."""
    _set_status(token_id, "revoked")


@txsign.command("verify-qr")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--server", default=None,
              help="Fetch keys (and texts the QR leaves out) from this qrgate URL; "
                   "default: the keys in QRGATE_DATA_DIR, texts from the links' URLs.")
def verify_qr(image: Path, server: str | None) -> None:
    """Print the chain in a QR image and whether it verifies (exit 1 if it does not)."""
    from qrgate.clients.phone import decode_png
    from qrgate.core.txsign import read_chain_code

    png = read_file(image)
    try:
        code = decode_png(png)
        keys = _keys(server)
        chain = read_chain_code(code, keys=keys, now=time.time())
        texts = [_text_of(link) for link in chain.links]
    # The verdict is the answer to the command, whichever way the checks failed.
    except failure_types() as error:
        raise Failure(f"NOT VERIFIED: {explain(error)}") from None
    _print_chain(chain, texts)
    click.echo(f"VERIFIED: {len(chain.links)} link(s), signed by {chain.issuer} "
               f"(key {chain.kid.hex()})")


def _keys(server: str | None) -> PublicKeySet:
    import httpx

    from qrgate.core.keyring import PublicKeySet
    from qrgate.runtime import build_runtime

    if server is not None:
        response = httpx.get(f"{server.rstrip('/')}/v1/keys", timeout=10)
        response.raise_for_status()
        return PublicKeySet.from_jwks(response.json())
    rt = build_runtime(Settings.from_env())
    try:
        return rt.keyring.verifier
    finally:
        rt.close()


def _text_of(link: Link) -> TransactionText:
    import httpx

    from qrgate.core.txsign import TransactionText, check_link_text

    if link.text is not None:
        return link.text
    assert link.text_url is not None
    response = httpx.get(link.text_url, timeout=10)
    response.raise_for_status()
    body = response.json()
    text = TransactionText(account=body["account"], platform=body["platform"],
                           demand=body["demand"], comment=body["comment"])
    check_link_text(link, text)
    return text


def _print_chain(chain: Chain, texts: list[TransactionText]) -> None:
    for number, (link, text) in enumerate(zip(chain.links, texts, strict=True), start=1):
        source = "in QR" if link.text is not None else "fetched, digest checked"
        click.echo(f"link {number}: transaction {link.transaction_id.hex()}")
        click.echo(f"  account  {text.account}")
        click.echo(f"  platform {text.platform}")
        click.echo(f"  demand   {text.demand}")
        click.echo(f"  comment  {text.comment}")
        click.echo(f"  signed by token response {link.response} at {utc_time(link.verified_at)} "
                   f"(text {source})")
