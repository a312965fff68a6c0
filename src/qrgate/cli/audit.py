"""``qrgate audit``: check the hash chain and its signed checkpoints, read entries.

Exit codes of ``verify`` and ``checkpoint``: 0 when all is well, 1 when tampering was
found, 2 for an error (one line on stderr, prefixed ``qrgate: error:``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qrgate.cli.output import utc_time
from qrgate.config import Settings
from qrgate.errors import Malformed, QrgateError, Rejected

# Storage and crypto modules are imported inside the commands, so that `qrgate --help`
# does not load them.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from qrgate.storage.audit_checkpoints import AnchoredReport

ERROR_EXIT = 2
TAMPERED_EXIT = 1


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log and its signed checkpoints."""


@contextlib.contextmanager
def _errors_as_one_line() -> Iterator[None]:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except QrgateError as error:
        _fail(f"{error.code}: {error.detail}")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}")
    except SQLAlchemyError as error:
        # The first line only: the rest is SQL and a link, and may be many lines long.
        _fail(f"database: {str(error).splitlines()[0]}")
    except ValueError as error:  # e.g. an unsupported QRGATE_DATABASE_URL
        _fail(str(error))


def _fail(message: str) -> None:
    click.echo(f"qrgate: error: {message}", err=True)
    raise SystemExit(ERROR_EXIT)


@audit.command("verify")
@click.option(
    "--checkpoints",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoints exported earlier (audit export-checkpoints): also fail if any of "
    "them is missing from the database or differs.",
)
def verify(export_file: Path | None) -> None:
    """Verify the chain and every signed checkpoint; exits 1 if the log was tampered with."""
    from qrgate.runtime import build_runtime
    from qrgate.storage.audit_checkpoints import verify_anchored

    with _errors_as_one_line():
        rt = build_runtime(Settings.from_env())
        try:
            # Every key that may have signed a checkpoint, retired ones included: retiring
            # a key stops codes, not the history it signed (see docs/audit.md).
            keys = rt.keys.all_public_keys()
            exported = None if export_file is None else _read_export_file(export_file, keys)
            with rt.read() as conn:
                report = verify_anchored(conn, keys=keys, exported=exported)
        finally:
            rt.close()
    _print_report(report, exported=exported, export_file=export_file)
    if not report.ok:
        raise SystemExit(TAMPERED_EXIT)


def _read_export_file(
    path: Path, keys: Mapping[bytes, ec.EllipticCurvePublicKey]
) -> dict[int, bytes]:
    from qrgate.core.audit_checkpoint import read_export

    try:
        with path.open(encoding="ascii") as lines:
            return read_export(lines, keys=keys)
    except UnicodeDecodeError:
        raise Malformed(f"{path}: not a file of exported checkpoints") from None
    except QrgateError as error:
        raise type(error)(f"{path}: {error.detail}", code=error.code) from error


def _print_report(
    report: AnchoredReport, *, exported: Mapping[int, bytes] | None, export_file: Path | None
) -> None:
    chain, checkpoints = report.chain, report.checkpoints
    if chain.ok:
        click.echo(f"audit log OK: {chain.checked} entries, chain intact")
    else:
        click.echo(f"audit log BROKEN at entry {chain.first_bad_seq}: {chain.problem} "
                   f"({chain.checked} entries checked)", err=True)
    if not checkpoints.ok:
        click.echo(f"checkpoints BROKEN at checkpoint {checkpoints.first_bad_number}: "
                   f"{checkpoints.problem}: {checkpoints.detail}", err=True)
        return
    if not chain.ok:
        # Counts of covered entries would mislead while the chain itself is broken.
        click.echo(f"checkpoints OK: {checkpoints.checked} signed")
    elif checkpoints.checked == 0:
        click.echo(f"checkpoints: none yet; all {_count(report.only_chained, 'entry')} "
                   "only hash-chained")
    else:
        click.echo(f"checkpoints OK: {checkpoints.checked} signed; entries 1-{report.covered} "
                   f"covered by a signed checkpoint, {_count(report.only_chained, 'entry')} "
                   "after it only hash-chained")
    if exported is not None:
        click.echo(f"exported copy OK: all {_count(len(exported), 'checkpoint')} of "
                   f"{export_file} are stored, unchanged")


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun[:-1]}ies" if noun.endswith("y") else f"{number} {noun}s"


@audit.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the chain now (servers also sign one every
    QRGATE_AUDIT_CHECKPOINT_SECONDS); exits 1 if the log no longer matches the last one."""
    from qrgate.runtime import build_runtime
    from qrgate.storage.audit_checkpoints import latest_checkpoint, write_checkpoint

    with _errors_as_one_line():
        rt = build_runtime(Settings.from_env())
        try:
            try:
                written = write_checkpoint(
                    rt.engine, signer=rt.keyring, issuer=rt.settings.issuer, now=rt.clock()
                )
            except Rejected as error:
                if error.code != "tampered_chain":
                    raise
                click.echo(f"audit log TAMPERED, not signing: {error.detail}", err=True)
                raise SystemExit(TAMPERED_EXIT) from None
            if written is not None:
                signed = written.checkpoint
                click.echo(f"checkpoint {signed.number} signed: entries 1-{signed.seq}, "
                           f"key {written.kid.hex()}")
                return
            with rt.read() as conn:
                last = latest_checkpoint(conn)
        finally:
            rt.close()
    if last is None:
        click.echo("audit log is empty: nothing to sign")
    else:
        click.echo(f"nothing new: checkpoint {last.number} already covers entries "
                   f"1-{last.seq}")


@audit.command("export-checkpoints")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (replaced whole, never half-written) instead of stdout.",
)
def export_checkpoints(output: Path | None) -> None:
    """Print every signed checkpoint, one per line, to keep outside the database."""
    from qrgate.runtime import build_runtime
    from qrgate.storage.audit_checkpoints import checkpoint_texts

    with _errors_as_one_line():
        rt = build_runtime(Settings.from_env())
        try:
            with rt.read() as conn:
                if output is None:
                    for text in checkpoint_texts(conn):
                        click.echo(text)
                    return
                count = _write_atomically(output, checkpoint_texts(conn))
        finally:
            rt.close()
    click.echo(f"exported {_count(count, 'checkpoint')} to {output}", err=True)


def _write_atomically(path: Path, lines: Iterator[str]) -> int:
    # The previous copy is the reference for the next verify: never leave it half replaced.
    count = 0
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return count


@audit.command("show")
@click.option("--challenge", default=None, help="Only entries of this challenge id.")
@click.option("--event", default=None, help="Only entries of this event (e.g. confirm.scan).")
@click.option("--limit", type=int, default=50, show_default=True,
              help="At most this many entries, the newest.")
def show(challenge: str | None, event: str | None, limit: int) -> None:
    """Print entries as JSON lines, newest last."""
    from qrgate.runtime import build_runtime
    from qrgate.storage.audit import search_audit

    rt = build_runtime(Settings.from_env())
    try:
        with rt.read() as conn:
            entries = search_audit(conn, challenge_id=challenge, event=event, limit=limit)
        # search_audit pages newest first; a log reads oldest first, like a file.
        for entry in reversed(entries):
            click.echo(json.dumps({**entry, "at": utc_time(entry["at"])}, default=_plain))
    finally:
        rt.close()


def _plain(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else str(value)
