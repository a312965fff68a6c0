"""``qrgate phone``: the phone simulator from the command line, for walk-throughs and
scripts. Its device key and what it learnt at enrolment live in a state file (mode 0600)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization

from qrgate.clients.phone import PhoneSimulator, decode_png
from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.core.keyring import PublicKeySet
from qrgate.errors import QrgateError

STATE_OPTION = click.option("--state", "state_path", type=click.Path(path_type=Path),
                            default=Path("phone.json"), show_default=True,
                            help="File holding this phone's device key and identity.")


def _save(path: Path, phone: PhoneSimulator) -> None:
    assert phone.server_keys is not None
    state = {
        "server": phone.base_url,
        "device_id": phone.device_id,
        "token": None if phone.token is None else phone.token.state(),
        "private_key": phone.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "server_keys": phone.server_keys.to_jwks(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(state, file)


def _load(path: Path) -> PhoneSimulator:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        key = serialization.load_pem_private_key(state["private_key"].encode(), password=None)
    except (OSError, ValueError, KeyError) as error:
        raise click.ClickException(f"cannot read phone state {path}: {error}") from None
    keys = PublicKeySet.from_jwks(state["server_keys"])
    token = state.get("token")
    return PhoneSimulator(state["server"], private_key=key,  # type: ignore[arg-type]
                          device_id=state["device_id"], server_keys=keys, show=click.echo,
                          token=None if token is None else SoftToken.from_state(
                              token, server_keys=keys, show=click.echo))


def _code_from(source: str) -> str:
    """A QR image file is decoded as a camera would; anything else is the code text."""
    path = Path(source)
    if path.is_file():
        return decode_png(path.read_bytes())
    return source


@click.group()
def phone() -> None:
    """A simulated phone: bind it, scan codes, approve or deny."""


@phone.command("enrol")
@click.argument("code_or_image")
@click.option("--server", required=True, help="qrgate base URL, e.g. http://127.0.0.1:8000")
@click.option("--password", default=None, help="The user's password, to confirm.")
@click.option("--confirm-code", default=None, help="Or the code shown once at enrolment.")
@STATE_OPTION
def enrol(code_or_image: str, server: str, password: str | None, confirm_code: str | None,
          state_path: Path) -> None:
    """Bind this phone with an enrolment code (text or a QR image file)."""
    device = PhoneSimulator(server, show=click.echo)
    try:
        device.enrol(_code_from(code_or_image), password=password, confirm_code=confirm_code)
    except ApiError as error:
        raise click.ClickException(str(error)) from None
    finally:
        device.close()
    _save(state_path, device)


@phone.command("scan")
@click.argument("code_or_image")
@click.option("--approve/--deny", default=None,
              help="Decide at once; without it the phone asks (Decline is the default).")
@click.option("--number", type=int, default=None, help="The number the browser shows.")
@STATE_OPTION
def scan(code_or_image: str, approve: bool | None, number: int | None, state_path: Path) -> None:
    """Scan a confirmation code (text or QR image), show what it asks, then decide.

    A code is scanned once: scanning it again ends the challenge (it may have been relayed).
    """
    device = _load(state_path)
    try:
        context = device.scan_text(_code_from(code_or_image))
        click.echo(f"challenge {context['challenge_id']}")
        if approve is None:
            approve = click.confirm("Approve?", default=False)
        if approve and context["number_matching"] and number is None:
            number = click.prompt("Number shown in your browser", type=int)
        device.decide(context["challenge_id"], approve=approve, number=number)
    except ApiError as error:
        raise click.ClickException(str(error)) from None
    finally:
        device.close()


@phone.command("decide")
@click.argument("challenge_id")
@click.option("--approve/--deny", required=True)
@click.option("--number", type=int, default=None, help="The number the browser shows.")
@STATE_OPTION
def decide(challenge_id: str, approve: bool, number: int | None, state_path: Path) -> None:
    """Approve or deny a challenge this phone already scanned."""
    device = _load(state_path)
    try:
        device.decide(challenge_id, approve=approve, number=number)
    except ApiError as error:
        raise click.ClickException(str(error)) from None
    finally:
        device.close()


@phone.group("token")
def token() -> None:
    """Scheme E: the phone's OCRA software token."""


@token.command("enrol")
@click.argument("code_or_image")
@click.option("--server", default=None, help="qrgate base URL (new phones only).")
@STATE_OPTION
def token_enrol(code_or_image: str, server: str | None, state_path: Path) -> None:
    """Enrol and activate the token from its enrolment QR (text or image)."""
    if state_path.exists():
        device = _load(state_path)
    elif server is not None:
        device = PhoneSimulator(server, show=click.echo)
    else:
        raise click.ClickException("a new phone needs --server")
    try:
        device.enrol_token(_code_from(code_or_image))
    except ApiError as error:
        raise click.ClickException(str(error)) from None
    finally:
        device.close()
    _save(state_path, device)


@token.command("sign")
@click.argument("code_or_image")
@STATE_OPTION
def token_sign(code_or_image: str, state_path: Path) -> None:
    """S2: show the transaction of a challenge QR and print the token's response."""
    device = _load(state_path)
    try:
        response = device.sign_transaction(_code_from(code_or_image))
    except QrgateError as error:
        raise click.ClickException(f"{error.code}: {error.detail}") from None
    finally:
        device.close()
    _save(state_path, device)  # the counter moved
    click.echo(response)


@phone.command("history")
@click.option("--query", "-q", default=None)
@STATE_OPTION
def history(query: str | None, state_path: Path) -> None:
    """This phone's confirmations, newest first."""
    device = _load(state_path)
    try:
        for item in device.history(query):
            click.echo(f"{item['created_at']:.0f} {item['state']:<9} "
                       f"{item['scene'].get('operation')} {item['scene'].get('amount') or ''}")
    finally:
        device.close()
