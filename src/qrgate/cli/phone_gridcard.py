"""``qrgate phone gridcard``: sign in with the printed grid card (scheme A), as the phone
app does alone: password, then the asked cell read out of a picture of the card."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qrgate.cli.failures import Failure, read_file

if TYPE_CHECKING:
    from PIL.Image import Image

_PDF_MAGIC = b"%PDF-"


def _card_image(path: Path, *, page: int, photo: bool) -> Image:
    """The card as the camera sees it: a page of the printable PDF, or an image file."""
    import io

    import pypdfium2
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    from qrgate.clients.gridcard_card import photo_like, render_page

    data = read_file(path)
    if data.startswith(_PDF_MAGIC):
        try:
            image = render_page(data, page=page)
        except pypdfium2.PdfiumError as error:
            raise Failure(f"cannot read the PDF {path}: {error}") from None
    else:
        try:
            with PILImage.open(io.BytesIO(data)) as opened:
                opened.load()
                image = opened.copy()
        except (UnidentifiedImageError, OSError) as error:
            raise Failure(f"{path} is neither a PDF nor an image: {error}") from None
    return photo_like(image) if photo else image


@click.command("gridcard")
@click.option("--server", required=True, help="qrgate base URL, e.g. http://127.0.0.1:8000")
@click.option("--code", default=None,
              help="Join a relying party's attempt: the code its page shows (QG1:...) or a "
                   "picture of it, instead of --org, --login and a password.")
@click.option("--org", "organisation", default=None, help="The organisation's slug.")
@click.option("--login", default=None, help="The user's login.")
@click.option("--password", default=None, help="The user's password.")
@click.option("--password-stdin", is_flag=True, default=False,
              help="Read the user's password from stdin instead.")
@click.option("--card", "card_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The card: its printable PDF, or a PNG/JPEG scan or photo of it.")
@click.option("--page", type=click.IntRange(min=0), default=0, show_default=True,
              help="The PDF page that holds the card (from 0).")
@click.option("--photo", is_flag=True, default=False,
              help="Look at the card as a phone camera would (skewed, blurred, noisy).")
def gridcard(*, server: str, code: str | None, organisation: str | None, login: str | None,
             password: str | None, password_stdin: bool, card_path: Path, page: int,
             photo: bool) -> None:
    """Scheme A: sign in with the password and the cell of the card the server asks for,
    or (--code) answer a relying party's attempt with the cell its page names.

    Exits 1 with the server's code (e.g. bad_credentials, wrong_cell) if it refuses.
    """
    from qrgate.cli.phone import code_from
    from qrgate.clients.gridcard import GridcardPhone, answer_with_card, authenticate_with_card
    from qrgate.core.gridcard_attempt import AttemptState

    alone = (organisation, login, password, password_stdin or None)
    if code is not None and any(given is not None for given in alone):
        raise click.UsageError("--code joins a relying party's attempt: it takes no --org, "
                               "--login or password")
    if code is None:
        if organisation is None or login is None:
            raise click.UsageError("give --org and --login (or --code)")
        if (password is None) == (not password_stdin):
            raise click.UsageError("give --password or --password-stdin")
    card = _card_image(card_path, page=page, photo=photo)
    click.echo(f"card: {card_path}{' (as a photo)' if photo else ''}")
    with GridcardPhone(server, show=click.echo) as phone:
        if code is not None:
            attempt = answer_with_card(phone, phone.scan_code(code_from(code)), card)
        else:
            if password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            assert password is not None and organisation is not None and login is not None
            click.echo(f"signing in as {login} at {organisation}")
            attempt = authenticate_with_card(phone, organisation=organisation, login=login,
                                             password=password, card_image=card)
    if attempt.state is not AttemptState.AUTHENTICATED:
        raise Failure(f"{attempt.reason or attempt.state}: the attempt ended "
                      f"{attempt.state}, not authenticated")
