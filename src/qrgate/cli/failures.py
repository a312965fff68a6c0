"""How ``qrgate`` reports a failure: one line on stderr, one prefix, an exit code that says
whose fault it was.

Every failure a user can cause or meet is worded here, in one place::

    qrgate: error: expired: code has expired           qrgate refused: its stable code, detail
    qrgate: error: not_found: ... (HTTP 404)           a qrgate server refused (ApiError)
    qrgate: error: cannot reach http://h:8000: connection refused
    qrgate: error: cannot read FILE: no such file or directory
    qrgate: error: missing argument 'SLUG' (see 'qrgate admin org create --help')

Exit codes: 2 for usage errors (click's), 1 for the operational failures above, 70
(``EX_SOFTWARE`` of sysexits.h) for anything else: that is a bug, which ``main()`` reports as
an internal error without a traceback unless ``QRGATE_DEBUG=1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Final

import click

from qrgate.errors import QrgateError

PREFIX: Final = "qrgate: error: "
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 70


class Failure(click.ClickException):
    """An operational failure, already worded for the user (exit 1)."""

    exit_code = EXIT_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        report(self.format_message())


def report(message: str) -> None:
    # One line whatever the message holds: scripts and log collectors read errors by line.
    click.echo(PREFIX + " ".join(message.split()), err=True)


def reason(error: OSError) -> str:
    """``no such file or directory``: the system's words, without the errno noise."""
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise Failure(f"cannot read {path}: {reason(error)}") from None


def cannot_write(path: Path, error: OSError) -> Failure:
    return Failure(f"cannot write {path}: {reason(error)}")


def usage_message(error: click.UsageError) -> str:
    message = error.format_message().rstrip(".")
    message = message[:1].lower() + message[1:]
    if error.ctx is None:
        return message
    return f"{message} (see '{error.ctx.command_path} --help')"


def failure_types() -> tuple[type[Exception], ...]:
    """Every failure family that :func:`explain` words.

    httpx and SQLAlchemy are imported here, once something failed, not at start-up: most
    commands never touch them, and ``qrgate --help`` must not pay for them.
    """
    import httpx
    from sqlalchemy.exc import ArgumentError, OperationalError

    from qrgate.clients.relying_party import ApiError

    return (QrgateError, OSError, ApiError, httpx.HTTPError, httpx.InvalidURL,
            OperationalError, ArgumentError)


def explain(error: BaseException) -> str | None:
    """The line that tells a user what went wrong, or None for an error that is a bug."""
    if isinstance(error, QrgateError):
        return f"{error.code}: {error.detail}"
    if isinstance(error, OSError):
        if error.filename is not None:
            return f"cannot use {error.filename}: {reason(error)}"
        return reason(error)
    if not isinstance(error, failure_types()):
        return None
    return _explain_library_error(error)


def _explain_library_error(error: BaseException) -> str:
    import httpx
    from sqlalchemy.exc import ArgumentError, OperationalError

    from qrgate.clients.relying_party import ApiError

    if isinstance(error, ApiError):
        problem = error.problem
        detail = problem.get("detail") or problem.get("title") or ""
        return f"{error.code}: {detail} (HTTP {error.status})"
    if isinstance(error, httpx.HTTPStatusError):
        request, response = error.request, error.response
        return (f"{request.method} {request.url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}")
    if isinstance(error, httpx.HTTPError):
        return f"cannot reach {_server_of(error)}: {_transport_reason(error)}"
    if isinstance(error, httpx.InvalidURL):
        return f"invalid URL: {error}"
    if isinstance(error, OperationalError):
        # The driver's first line: the rest is SQL and a link to SQLAlchemy's docs.
        return f"database unavailable: {_first_line(error.orig or error)}"
    assert isinstance(error, ArgumentError)
    return f"QRGATE_DATABASE_URL: {_first_line(error)}"


def _server_of(error: Any) -> str:
    try:
        url = error.request.url
    except RuntimeError:  # httpx raises this when no request is attached
        return "the server"
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _transport_reason(error: BaseException) -> str:
    # httpx wraps httpcore's error, which wraps the socket's: the socket says it best.
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return reason(cause)
        cause = cause.__cause__ or cause.__context__
    return _first_line(error) or type(error).__name__


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def debugging() -> bool:
    """``QRGATE_DEBUG=1``: let an internal error's traceback through, for a bug report."""
    return os.environ.get("QRGATE_DEBUG", "") not in ("", "0")
