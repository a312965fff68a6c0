"""``qrgate gridcard``: issue, list and revoke users' printed grid cards (scheme A).

Run against the configured database directly; every issue and revoke is audited (actor
``cli``). ``issue`` writes the printable PDF, which holds every cell in clear: it is created
readable by its owner only, never over an existing file, and a card is issued only once its
PDF is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qrgate.cli.failures import cannot_write
from qrgate.cli.output import utc_time
from qrgate.cli.runtime import configured_runtime

# Database, crypto and PDF modules are imported inside the commands: `--help` stays fast.
if TYPE_CHECKING:
    from qrgate.gridcard.cards import CardRecord, IssuedCard


def _echo(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def _shown(card: CardRecord) -> dict[str, object]:
    from qrgate.core.gridcard import format_serial

    return {"serial": format_serial(card.serial), "status": card.status,
            "created_at": utc_time(card.created_at), "expires_at": utc_time(card.expires_at),
            "revoked_at": None if card.revoked_at is None else utc_time(card.revoked_at),
            "cells": card.layout.size, "used_cells": card.used_cells,
            "near_exhaustion": card.near_exhaustion}


@click.group()
def gridcard() -> None:
    """Scheme A: printed QR grid cards as a second factor."""


@gridcard.command("issue")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the printable card (PDF) here; it must not exist yet.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Days the card is valid (default 730).")
def issue(org_slug: str, login: str, out: Path, days: int | None) -> None:
    """Issue a user's card and write it as a PDF; the user's current card is revoked."""
    from qrgate.core.gridcard import Layout
    from qrgate.gridcard import cards
    from qrgate.gridcard.printing import CardToPrint, render_pdf

    try:
        # Exclusive and 0600 from the start: the file will hold every cell in clear.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise cannot_write(out, error) from None
    written = False
    try:
        with os.fdopen(fd, "wb") as file:
            def deliver(issued: IssuedCard) -> None:
                file.write(render_pdf([CardToPrint(card=issued.card,
                                                   expires_on=issued.record.expires_on())],
                                      issuer=issued.issuer_name))
                file.flush()
                os.fsync(file.fileno())

            with configured_runtime() as rt:
                issued = cards.run_issue(
                    rt, org_slug=org_slug, login=login, layout=Layout(),
                    ttl_days=days or cards.DEFAULT_TTL_DAYS, issuer="operator",
                    actor="cli", deliver=deliver)
        written = True
    except OSError as error:
        raise cannot_write(out, error) from None
    finally:
        if not written:
            out.unlink(missing_ok=True)
    from qrgate.core.gridcard import format_serial

    _echo({"login": login, "serial": format_serial(issued.record.serial),
           "expires_at": utc_time(issued.record.expires_at),
           "replaced": None if issued.replaced is None else format_serial(issued.replaced),
           "pdf": str(out)})


@gridcard.command("list")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
def list_(org_slug: str, login: str) -> None:
    """A user's cards, newest first (JSON; times in UTC)."""
    from qrgate.accounts import directory
    from qrgate.gridcard import cards

    with configured_runtime() as rt, rt.read() as conn:
        user = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                   login=login)
        _echo([_shown(card) for card in cards.list_cards(conn, user.id)])


@gridcard.command("revoke")
@click.argument("serial")
def revoke(serial: str) -> None:
    """Revoke a card at once (lost or stolen); its cells never check again."""
    from qrgate.gridcard import cards

    with configured_runtime() as rt:
        card = cards.run_revoke(rt, serial=serial, actor="cli")
    _echo({"serial": _shown(card)["serial"], "status": card.status,
           "revoked_at": None if card.revoked_at is None else utc_time(card.revoked_at)})
