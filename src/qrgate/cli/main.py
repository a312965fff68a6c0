"""``qrgate`` command line: serve, admin, audit, demo."""

from __future__ import annotations

import click
import uvicorn
from sqlalchemy.engine import make_url

from qrgate import __version__
from qrgate.cli.admin import admin
from qrgate.cli.audit import audit
from qrgate.cli.demo import demo
from qrgate.cli.phone import phone
from qrgate.cli.txsign import txsign
from qrgate.config import Settings
from qrgate.runtime import build_runtime


@click.group()
@click.version_option(__version__, prog_name="qrgate")
def cli() -> None:
    """qrgate: QR-code based authentication and payment verification."""


@cli.command()
@click.option("--host", default=None, help="Bind address (QRGATE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (QRGATE_PORT, default 8000).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes (they share the database).")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP server (uvicorn)."""
    settings = Settings.from_env()
    bind_host = host or settings.host
    bind_port = port or settings.port
    # Create keys and schema once, before workers race to do it.
    build_runtime(settings).close()
    click.echo(f"qrgate {__version__} on http://{bind_host}:{bind_port} "
               f"(data {settings.data_dir}, database {_redacted(settings.resolved_database_url)})")
    uvicorn.run("qrgate.http.asgi:app", host=bind_host, port=bind_port, workers=workers,
                log_level=settings.log_level, access_log=False, proxy_headers=False,
                factory=False)


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


cli.add_command(admin)
cli.add_command(audit)
cli.add_command(demo)
cli.add_command(phone)
cli.add_command(txsign)


def main() -> None:
    cli()
