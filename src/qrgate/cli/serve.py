"""``qrgate serve``: listen first, then hand the listening socket to uvicorn.

Binding here rather than in uvicorn means a port in use is one clear error line before
anything else happens, and the banner appears only once the server really listens. TLS
files are checked before that too (qrgate.tls), for the same reason.

At start the server prints the phone app's address and a QR code of it, so a phone on the
same network opens the app by scanning the terminal (qrgate.cli.serve_start).
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from qrgate import __version__
from qrgate.cli.failures import Failure, reason
from qrgate.config import Settings, http_url

# uvicorn's default listen backlog.
BACKLOG = 2048


@click.command()
@click.option("--host", default=None, help="Bind address (QRGATE_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65_535), default=None,
              help="Port (QRGATE_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes (they share the database).")
@click.option("--tls-cert", metavar="FILE", default=None,
              help="Serve https with this PEM certificate chain, server's first "
                   "(QRGATE_TLS_CERT; needs --tls-key).")
@click.option("--tls-key", metavar="FILE", default=None,
              help="The unencrypted PEM private key of --tls-cert (QRGATE_TLS_KEY).")
@click.option("--dev-tls", is_flag=True, default=False,
              help="Serve https with a self-signed certificate kept in the data directory, "
                   "to try the phone app from a phone (QRGATE_DEV_TLS=on).")
@click.option("--no-qr", is_flag=True, default=False,
              help="Do not print the QR code of the phone app's address at start.")
def serve(*, host: str | None, port: int | None, workers: int, tls_cert: str | None,
          tls_key: str | None, dev_tls: bool, no_qr: bool) -> None:
    """Run the HTTP server (uvicorn)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from qrgate import lan
    from qrgate.cli.serve_start import (
        app_url_lines,
        dev_certificate,
        dev_certificate_line,
        phone_reach_warning,
    )
    from qrgate.log_config import server_log_config
    from qrgate.runtime import build_runtime

    overrides: dict[str, str] = {}
    if host is not None:
        overrides["QRGATE_HOST"] = host
    if port is not None:
        overrides["QRGATE_PORT"] = str(port)
    if tls_cert is not None:
        overrides["QRGATE_TLS_CERT"] = tls_cert
    if tls_key is not None:
        overrides["QRGATE_TLS_KEY"] = tls_key
    if dev_tls:
        overrides["QRGATE_DEV_TLS"] = "on"
    # The options override the environment before anything is derived from it, so that
    # QRGATE_PUBLIC_URL, when not set, names the port this server really listens on.
    settings = Settings.from_env({**os.environ, **overrides})
    # Only when needed: resolving the host name can wait for a slow DNS server.
    wildcard = lan.is_wildcard(settings.host)
    addresses = lan.lan_ipv4_addresses() if wildcard or settings.dev_tls else ()
    if wildcard and addresses and not settings.env.get("QRGATE_PUBLIC_URL", "").strip():
        # Bound to every interface, the links (enrolment codes, waiting pages, the app's
        # address) must still name one that other machines reach: the LAN address.
        overrides["QRGATE_PUBLIC_URL"] = http_url(addresses[0], settings.port,
                                                  secure=settings.tls)
        settings = Settings.from_env({**os.environ, **overrides})
    certificate = _checked_tls_files(settings)
    # Worker processes build their app from the environment (qrgate.http.asgi), not from
    # this process's Settings: hand the overrides on. An explicit QRGATE_PUBLIC_URL stays.
    os.environ.update(overrides)
    with _listen(settings.host, settings.port) as sock:
        # Keys and schema are created once, here, before the workers could race to do it.
        build_runtime(settings).close()
        made = None
        if settings.dev_tls:
            made = dev_certificate(settings, addresses=addresses, now=datetime.now(UTC))
            certificate = made.cert_file, made.key_file
        database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        links = "" if settings.public_url == _where(settings) else f", links {settings.public_url}"
        click.echo(f"qrgate {__version__} on {_where(settings)}{links} "
                   f"(data {settings.data_dir}, database {database})")
        if made is not None:
            click.echo(dev_certificate_line(made))
        for line in app_url_lines(settings, qr=not no_qr, ansi=sys.stdout.isatty()):
            click.echo(line)
        warning = phone_reach_warning(settings)
        if warning is not None:
            click.echo(f"qrgate: warning: {warning}", err=True)
        uvicorn.run("qrgate.http.asgi:app", fd=sock.fileno(), workers=workers,
                    log_level=settings.log_level, access_log=False, proxy_headers=False,
                    factory=False,
                    ssl_certfile=certificate[0] if certificate else None,
                    ssl_keyfile=certificate[1] if certificate else None,
                    log_config=server_log_config(level="debug" if settings.log_level == "trace"
                                                 else settings.log_level))


def _checked_tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """``--tls-cert``/``--tls-key``, checked: one line and exit 1 if they cannot serve."""
    from qrgate.tls import TlsFileError, check_pair

    if settings.tls_cert is None or settings.tls_key is None:
        return None
    try:
        pair = check_pair(settings.tls_cert, settings.tls_key)
    except TlsFileError as error:
        raise Failure(str(error)) from None
    now = datetime.now(UTC)
    if pair.expired(now=now):
        expired = pair.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"qrgate: warning: the certificate in {settings.tls_cert} expired at "
                   f"{expired}: browsers will refuse it", err=True)
    return settings.tls_cert, settings.tls_key


def _where(settings: Settings) -> str:
    return http_url(settings.host, settings.port, secure=settings.tls)


def _listen(host: str, port: int) -> socket.socket:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise Failure(f"cannot listen on {where}: {reason(error)}") from None
    try:
        # A restarted server must not wait for the old one's connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn takes a socket passed by fd for a Unix one and so never disables Nagle on
        # the connections it accepts; Linux copies this option from the listening socket to
        # each of them. Without it every response waited for a delayed ACK: measured 45 ms
        # instead of 0.3 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise Failure(f"cannot listen on {where}: {reason(error)}") from None
    return sock
