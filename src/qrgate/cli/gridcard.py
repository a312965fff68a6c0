"""``qrgate gridcard``: issue, reissue, list and revoke users' printed grid cards (scheme A).

Run against the configured database directly; every issue and revoke is audited (actor
``cli``). ``issue`` and ``reissue`` write the printable PDF, which holds every cell in clear:
it is created readable by its owner only, never over an existing file, and a card is issued
only once its PDF is written. ``issue --count`` prints a whole organisation's missing cards
as PDF volumes, with a progress bar and a manifest.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import click

from qrgate.cli.failures import Failure, cannot_write
from qrgate.cli.output import utc_time
from qrgate.cli.runtime import configured_runtime

# Database, crypto and PDF modules are imported inside the commands: `--help` stays fast.
if TYPE_CHECKING:
    from qrgate.gridcard.cards import CardRecord, IssuedCard
    from qrgate.runtime import Runtime

# 33 pages of three cards: a volume is a stack a desk printer takes in one go.
CARDS_PER_VOLUME: Final = 99
MANIFEST_COLUMNS: Final = ("login", "serial", "expires_at", "file", "page")


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
@click.option("--login", default=None, help="The user's login (or --count).")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Issue cards to up to COUNT users of the organisation who have none, "
                   "by login (or --login).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="With --login: write the printable card (PDF) here; it must not exist "
                   "yet. With --count: a new or empty directory for the PDF volumes and "
                   "manifest.csv.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Days the card is valid (default 730).")
@click.option("--cards-per-volume", type=click.IntRange(1, 999), default=None,
              help=f"With --count: cards per PDF file (default {CARDS_PER_VOLUME}, "
                   f"{CARDS_PER_VOLUME // 3} pages).")
def issue(*, org_slug: str, login: str | None, count: int | None, out: Path,
          days: int | None, cards_per_volume: int | None) -> None:
    """Issue a user's card as a PDF, revoking the user's current one (--login); or cards to
    the users who have none, as PDF volumes with a manifest (--count)."""
    if login is not None and count is None:
        if cards_per_volume is not None:
            raise click.UsageError("--cards-per-volume goes with --count")
        _issue_one(org_slug, login, out, days, replacing=False)
    elif count is not None and login is None:
        _issue_many(org_slug, count, out, days, cards_per_volume or CARDS_PER_VOLUME)
    else:
        raise click.UsageError("give exactly one of --login and --count")


@gridcard.command("reissue")
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option("--login", required=True, help="The user's login.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the printable card (PDF) here; it must not exist yet.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Days the card is valid (default 730).")
def reissue(org_slug: str, login: str, out: Path, days: int | None) -> None:
    """Replace a user's card (lost, used up, expiring): a new card as a PDF, and the current
    one revoked; refused (no_card) for a user who has none."""
    _issue_one(org_slug, login, out, days, replacing=True)


def _issue_one(org_slug: str, login: str, out: Path, days: int | None, *,
               replacing: bool) -> None:
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
                    actor="cli", deliver=deliver, replace_only=replacing)
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


def _issue_many(org_slug: str, count: int, out: Path, days: int | None,
                cards_per_volume: int) -> None:
    """Issue and print volume by volume. A volume's cards are issued in one transaction
    that commits only once their PDF is on disk: an interrupted run never leaves an issued
    card without its printed copy (at worst a last volume of cards never issued, which
    manifest.csv does not list)."""
    from qrgate.accounts import directory
    from qrgate.gridcard import cards

    _new_or_empty_directory(out)
    manifest_path = out / "manifest.csv"
    files: list[str] = []
    issued = 0
    with configured_runtime() as rt:
        with rt.read() as conn:
            org_id = directory.org_id_by_slug(conn, org_slug)
        with rt.engine.begin() as conn:
            # What the bar counts to: users added during the run wait for the next one.
            planned = len(cards.users_without_card(conn, org_id=org_id, limit=count))
        bar = click.progressbar(length=planned, label="Issuing grid cards", file=sys.stderr)
        with _private_text(manifest_path) as manifest, bar:
            rows = csv.writer(manifest)
            rows.writerow(MANIFEST_COLUMNS)
            while issued < planned:
                path = out / f"cards-{len(files) + 1:04d}.pdf"
                volume = _issue_volume(rt, org_id=org_id, path=path,
                                       limit=min(cards_per_volume, planned - issued),
                                       ttl_days=days or cards.DEFAULT_TTL_DAYS,
                                       advance=bar.update)
                if not volume:
                    break
                rows.writerows(volume)
                manifest.flush()
                os.fsync(manifest.fileno())
                files.append(str(path))
                issued += len(volume)
    _echo({"issued": issued, "files": files, "manifest": str(manifest_path)})


def _issue_volume(rt: Runtime, *, org_id: int, path: Path, limit: int, ttl_days: int,
                  advance: Callable[[int], None]) -> list[tuple[str, str, str, str, int]]:
    """Issue up to ``limit`` cards and print them to ``path``; their manifest rows."""
    from qrgate.core.gridcard import Layout, format_serial
    from qrgate.decisions import AuditSubject
    from qrgate.gridcard import cards
    from qrgate.gridcard.printing import CARDS_PER_PAGE, CardToPrint, render_pdf

    layout = Layout()
    now = rt.clock()
    with rt.engine.begin() as conn:
        users = cards.users_without_card(conn, org_id=org_id, limit=limit)
        if not users:
            return []
        volume: list[IssuedCard] = []
        for user in users:
            card = cards.issue(rt, conn, user=user, layout=layout, ttl_days=ttl_days,
                               issuer="operator", now=now)
            # The entry run_issue writes for one card.
            AuditSubject(event="gridcard.issue", scheme="gridcard", org_id=user.org_id,
                         user_id=user.id,
                         detail={"actor": "cli", "issued_by": "operator",
                                 "serial": card.record.serial, "replaced": card.replaced,
                                 "expires_at": card.record.expires_at,
                                 "layout": f"{layout.rows}x{layout.columns}"},
                         ).record(conn, now=now, reason="issued")
            volume.append(card)

        def drawn() -> Iterator[CardToPrint]:
            for card in volume:
                yield CardToPrint(card=card.card, expires_on=card.record.expires_on())
                advance(1)

        _write_durably(path, render_pdf(drawn(), issuer=volume[0].issuer_name))
    return [(user.login, format_serial(card.record.serial), utc_time(card.record.expires_at),
             path.name, index // CARDS_PER_PAGE + 1)
            for index, (user, card) in enumerate(zip(users, volume, strict=True))]


def _new_or_empty_directory(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise Failure(f"cannot write {path}: not a directory") from None
        if any(path.iterdir()):
            raise Failure(f"cannot write {path}: the directory is not empty") from None
    except OSError as error:
        raise cannot_write(path, error) from None


@contextmanager
def _private_text(path: Path) -> Iterator[TextIO]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise cannot_write(path, error) from None
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as file:
        yield file


def _write_durably(path: Path, data: bytes) -> None:
    """Exclusive and 0600 (the file holds cells in clear); on disk, name included, when this
    returns. A file left half written is removed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
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
