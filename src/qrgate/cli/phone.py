"""``qrgate phone``: the phone simulator from the command line, for walk-throughs and
scripts. Its device key and what it learnt at enrolment live in a state file (mode 0600)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from qrgate.cli.failures import Failure, cannot_write, read_file
from qrgate.cli.output import utc_time
from qrgate.cli.phone_gridcard import gridcard

if TYPE_CHECKING:
    from qrgate.clients.phone import PhoneSimulator

# How every qrgate code starts (qrgate.core.codes.PREFIX, any version); importing that module
# here would load the cryptography stack for `qrgate phone --help`.
_CODE: Final = re.compile(r"QG[0-9]+:", re.ASCII)

STATE_OPTION = click.option("--state", "state_path", type=click.Path(path_type=Path),
                            default=Path("phone.json"), show_default=True,
                            help="File holding this phone's device key and identity.")


def _save(path: Path, phone: PhoneSimulator) -> None:
    from cryptography.hazmat.primitives import serialization

    assert phone.server_keys is not None
    state = {
        "server": phone.base_url,
        "device_id": phone.device_id,
        "token": None if phone.token is None else phone.token.state(),
        "private_key": phone.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "server_keys": phone.server_keys.to_jwks(),
        "offline_secret": None if phone.offline_secret is None
        else base64.urlsafe_b64encode(phone.offline_secret).rstrip(b"=").decode(),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # The file holds the device's private key: 0600 even if it existed with other modes.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(state, file)
    except OSError as error:
        raise cannot_write(path, error) from None


def _load(path: Path) -> PhoneSimulator:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from qrgate.clients.phone import PhoneSimulator, offline_secret_of
    from qrgate.clients.token import SoftToken
    from qrgate.core.keyring import PublicKeySet

    if not path.exists():
        raise Failure(f"no phone state in {path}: enrol this phone first, or pass --state")
    try:
        state: dict[str, Any] = json.loads(read_file(path))
        key = serialization.load_pem_private_key(state["private_key"].encode(), password=None)
        keys = PublicKeySet.from_jwks(state["server_keys"])
        token = state.get("token")
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the device key is not an EC key")
        return PhoneSimulator(state["server"], private_key=key, device_id=state["device_id"],
                              server_keys=keys, show=click.echo,
                              offline_secret=offline_secret_of(state),
                              token=None if token is None else SoftToken.from_state(
                                  token, server_keys=keys, show=click.echo))
    except KeyError as error:
        raise Failure(f"{path} is not a phone state file: {error} is missing") from None
    except (ValueError, TypeError, AttributeError) as error:
        raise Failure(f"{path} is not a phone state file: {error}") from None


def _bound(path: Path) -> PhoneSimulator:
    """A phone that can scan and decide: one enrolled with ``phone enrol``, not only given
    a token."""
    device = _load(path)
    if device.device_id is None:
        device.close()
        raise Failure(f"the phone in {path} is not bound to a user: run phone enrol first")
    return device


def code_from(source: str) -> str:
    """A code is taken as it is; anything else names a QR image, decoded as a camera would."""
    source = source.strip()
    if _CODE.match(source):
        return source
    path = Path(source)
    if not path.exists() and not path.suffix:
        shown = source if len(source) <= 40 else source[:37] + "..."
        raise Failure(f"{shown!r} is neither a qrgate code (QG1:...) nor an image file")
    from qrgate.clients.phone import decode_png

    return decode_png(read_file(path))


@click.group()
def phone() -> None:
    """A simulated phone: bind it, scan codes, approve or deny; sign in with a grid card."""


phone.add_command(gridcard)


@phone.command("enrol")
@click.argument("code_or_image", required=False)
@click.option("--server", required=True, help="qrgate base URL, e.g. http://127.0.0.1:8000")
@click.option("--password", default=None, help="The user's password, to confirm.")
@click.option("--confirm-code", default=None, help="Or the code shown once at enrolment.")
@click.option("--access-pass", default=None,
              help="Lost phone: a temporary access pass instead of an enrolment code.")
@STATE_OPTION
def enrol(code_or_image: str | None, server: str, *, password: str | None,
          confirm_code: str | None, access_pass: str | None, state_path: Path) -> None:
    """Bind this phone with an enrolment code (text or a QR image file), or with a
    temporary access pass (--access-pass)."""
    from qrgate.clients.phone import PhoneSimulator

    if (code_or_image is None) == (access_pass is None):
        raise click.UsageError("give an enrolment code (or image), or --access-pass")
    if access_pass is not None and (password is not None or confirm_code is not None):
        raise click.UsageError("an access pass needs no --password or --confirm-code")
    code = None if code_or_image is None else code_from(code_or_image)
    device = PhoneSimulator(server, show=click.echo)
    try:
        if code is None:
            device.enrol_with_pass(access_pass or "")
        else:
            device.enrol(code, password=password, confirm_code=confirm_code)
    finally:
        device.close()
    _save(state_path, device)


@phone.command("scan")
@click.argument("code_or_image")
@click.option("--approve/--deny", default=None,
              help="Decide at once; without it the phone asks (Decline is the default).")
@click.option("--number", type=int, default=None, help="The number the browser shows.")
@click.option("--offline", is_flag=True, default=False,
              help="No network: print the one-time code to type into the waiting page.")
@STATE_OPTION
def scan(code_or_image: str, approve: bool | None, number: int | None, offline: bool,
         state_path: Path) -> None:
    """Scan a confirmation code (text or QR image), show what it asks, then decide.

    A code is scanned once: scanning it again ends the challenge (it may have been relayed).
    With --offline nothing is sent: the phone verifies the code with the keys it holds and
    prints the 8-digit code that approves it when typed into the waiting page.
    """
    code = code_from(code_or_image)
    device = _bound(state_path)
    try:
        if offline:
            if approve is False:
                raise Failure("--offline approves; to decline, just do not type the code")
            if device.offline_secret is None:
                raise Failure(f"the phone in {state_path} holds no offline secret (it was "
                              "enrolled before offline approval existed): enrol it again")
            if number is None and device.read_confirm_code(code).number_matching:
                number = click.prompt("Number shown in your browser", type=int)
            click.echo(device.offline_code(code, number=number))
            return
        context = device.scan_text(code)
        click.echo(f"challenge {context['challenge_id']}")
        if approve is None:
            approve = click.confirm("Approve?", default=False)
        if approve and context["number_matching"] and number is None:
            number = click.prompt("Number shown in your browser", type=int)
        device.decide(context["challenge_id"], approve=approve, number=number)
    finally:
        device.close()


@phone.command("decide")
@click.argument("challenge_id")
@click.option("--approve/--deny", required=True, help="The decision to send.")
@click.option("--number", type=int, default=None, help="The number the browser shows.")
@STATE_OPTION
def decide(challenge_id: str, approve: bool, number: int | None, state_path: Path) -> None:
    """Approve or deny a challenge this phone already scanned."""
    device = _bound(state_path)
    try:
        device.decide(challenge_id, approve=approve, number=number)
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
    from qrgate.clients.phone import PhoneSimulator

    code = code_from(code_or_image)
    if state_path.exists():
        device = _load(state_path)
    elif server is not None:
        device = PhoneSimulator(server, show=click.echo)
    else:
        raise Failure("a new phone needs --server")
    try:
        device.enrol_token(code)
    finally:
        device.close()
    _save(state_path, device)


@token.command("sign")
@click.argument("code_or_image")
@STATE_OPTION
def token_sign(code_or_image: str, state_path: Path) -> None:
    """S2: show the transaction of a challenge QR and print the token's response."""
    code = code_from(code_or_image)
    device = _load(state_path)
    if device.token is None:
        device.close()
        raise Failure(f"the phone in {state_path} has no token: run phone token enrol first")
    try:
        response = device.sign_transaction(code)
    finally:
        device.close()
    _save(state_path, device)  # the counter moved
    click.echo(response)


@phone.command("history")
@click.option("--query", "-q", default=None, help="Only confirmations mentioning this text.")
@STATE_OPTION
def history(query: str | None, state_path: Path) -> None:
    """This phone's confirmations, newest first."""
    device = _bound(state_path)
    try:
        for item in device.history(query):
            click.echo(f"{utc_time(item['created_at'])} {item['state']:<9} "
                       f"{item['scene'].get('operation')} {item['scene'].get('amount') or ''}")
    finally:
        device.close()
