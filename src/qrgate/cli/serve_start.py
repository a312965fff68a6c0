"""What ``qrgate serve`` prepares and says at start besides its banner: the development
certificate, the phone app's address with a QR code of it, and a warning when a phone could
reach the server but its camera would not work there."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from qrgate import lan
from qrgate.cli.failures import Failure, cannot_write
from qrgate.cli.terminal_qr import qr_lines
from qrgate.config import Settings
from qrgate.dev_tls import DevCertificate, ensure_dev_certificate


def app_url(settings: Settings) -> str:
    """Where a phone opens the app. The public URL already names the LAN address when the
    server listens on every interface (qrgate.cli.serve)."""
    return f"{settings.public_url}/app/"


def app_url_lines(settings: Settings, *, qr: bool, ansi: bool) -> list[str]:
    url = app_url(settings)
    if not qr:
        return [f"phone app: {url}"]
    return [f"phone app: {url} (scan the code below with the phone's camera)",
            *qr_lines(url, ansi=ansi)]


def phone_reach_warning(settings: Settings) -> str | None:
    """The line to print when phones can reach the server but get plain http: browsers
    open the camera and run the offline mode (a service worker) only over https."""
    if settings.public_url.startswith("https://") or lan.is_loopback(settings.host):
        return None
    return ("phones reach this server over plain http, where the app can open neither the "
            "camera nor its offline mode: use --dev-tls, --tls-cert/--tls-key, or a TLS "
            "reverse proxy with QRGATE_PUBLIC_URL=https://...")


def dev_certificate(settings: Settings, *, addresses: Sequence[str],
                    now: datetime) -> DevCertificate:
    """The development certificate for ``--dev-tls``, made or reused; it names every name a
    phone may use for this server."""
    names = [*addresses]
    for host in (settings.host, urlsplit(settings.public_url).hostname or ""):
        if host and not lan.is_wildcard(host):
            names.append(host)
    try:
        return ensure_dev_certificate(settings.data_dir, hostname=lan.hostname(),
                                      addresses=names, now=now)
    except OSError as error:
        path = Path(error.filename) if error.filename else settings.data_dir
        raise cannot_write(path, error) from None
    except ValueError as error:  # a host name that no certificate can carry
        raise Failure(f"cannot make a development certificate: {error}") from None


def dev_certificate_line(made: DevCertificate) -> str:
    state = "made now" if made.created else "reused"
    until = made.not_after.strftime("%Y-%m-%d")
    return (f"TLS: self-signed development certificate {made.cert_file} ({state}, valid "
            f"until {until}); a phone warns once: accept it to open the app")
