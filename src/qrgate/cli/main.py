"""``qrgate`` command line: serve, admin, audit, phone, txsign, gridcard, demo.

Start-up cost matters: ``qrgate --help`` must answer at once. So this module imports click and
little else, each command group is imported only when it is used (:class:`LazyGroup`), and the
group modules import FastAPI, SQLAlchemy, uvicorn and friends inside the commands that need
them (``tests/cli/test_cli_review.py`` checks that ``--help`` loads none of them).

Failures are worded in :mod:`qrgate.cli.failures`; :class:`QrgateGroup` and :func:`main`
make sure nothing else reaches the user, and never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import click

from qrgate import __version__
from qrgate.cli.failures import (
    EXIT_FAILURE,
    EXIT_INTERNAL,
    debugging,
    explain,
    failure_types,
    report,
    usage_message,
)


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use (click's documented pattern):
    ``lazy_subcommands`` maps a name to ``"module:attribute"``."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command


class QrgateGroup(LazyGroup):
    """The root group: every failure becomes one ``qrgate: error:`` line on stderr.

    Click's own handling (standalone mode) would print usage errors as ``Error: ...`` after
    the usage text, and let any other exception through as a traceback; here click runs
    without it and each kind of failure is reported the same way. Tests that use click's
    ``CliRunner`` get this too, since it calls :meth:`main` like the real entry point does.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            result = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()  # the help text itself, as click prints it
            sys.exit(error.exit_code)
        except click.UsageError as error:
            report(usage_message(error))
            sys.exit(error.exit_code)
        except click.ClickException as error:
            report(error.format_message())
            sys.exit(error.exit_code)
        except click.Abort:
            report("aborted")
            sys.exit(EXIT_FAILURE)
        # failure_types() runs only once something was raised: it imports heavy libraries.
        except failure_types() as error:
            report(explain(error) or type(error).__name__)
            sys.exit(EXIT_FAILURE)
        # Without standalone mode click returns the exit code of --help, --version, ctx.exit().
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=QrgateGroup, lazy_subcommands={
    "admin": "qrgate.cli.admin:admin",
    "audit": "qrgate.cli.audit:audit",
    "demo": "qrgate.cli.demo:demo",
    "gridcard": "qrgate.cli.gridcard:gridcard",
    "phone": "qrgate.cli.phone:phone",
    "serve": "qrgate.cli.serve:serve",
    "txsign": "qrgate.cli.txsign:txsign",
})
@click.version_option(__version__, prog_name="qrgate")
def cli() -> None:
    """qrgate: QR-code based authentication and payment verification.

    Set QRGATE_DEBUG=1 to see the traceback of an internal error.
    """


def main() -> None:
    try:
        cli.main()
    # The one catch-all: whatever got past QrgateGroup.main is a bug, not something the user
    # did, and a traceback would tell them nothing. One line says so; QRGATE_DEBUG=1 shows the
    # traceback for a bug report.
    except Exception as error:
        if debugging():
            raise
        report(f"internal error ({type(error).__name__}); "
               "set QRGATE_DEBUG=1 for the traceback")
        sys.exit(EXIT_INTERNAL)
