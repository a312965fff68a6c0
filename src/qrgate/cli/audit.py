"""``qrgate audit``: check the hash chain and read entries."""

from __future__ import annotations

import json

import click

from qrgate.config import Settings
from qrgate.runtime import build_runtime
from qrgate.storage.audit import search_audit, verify_audit


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("verify")
def verify() -> None:
    """Verify the chain; exits 1 if any entry was edited, removed or reordered."""
    rt = build_runtime(Settings.from_env())
    try:
        with rt.read() as conn:
            report = verify_audit(conn)
    finally:
        rt.close()
    if report.ok:
        click.echo(f"audit log OK: {report.checked} entries, chain intact")
        return
    click.echo(f"audit log BROKEN at entry {report.first_bad_seq}: {report.problem} "
               f"({report.checked} entries checked)", err=True)
    raise SystemExit(1)


@audit.command("show")
@click.option("--challenge", default=None, help="Only entries of this challenge id.")
@click.option("--event", default=None, help="Only entries of this event (e.g. confirm.scan).")
@click.option("--limit", type=int, default=50, show_default=True)
def show(challenge: str | None, event: str | None, limit: int) -> None:
    """Print entries as JSON lines, newest last."""
    rt = build_runtime(Settings.from_env())
    try:
        with rt.read() as conn:
            for entry in search_audit(conn, challenge_id=challenge, event=event, limit=limit):
                click.echo(json.dumps(entry, default=_plain))
    finally:
        rt.close()


def _plain(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else str(value)
