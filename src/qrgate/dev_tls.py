"""A self-signed certificate to try the phone app from a phone (``qrgate serve --dev-tls``).

A phone's browser opens the camera and runs a service worker only in a secure context:
https, or localhost, and a phone never reaches the server as localhost. So for trying the
app on a local network the server makes its own certificate: the phone warns once, the user
accepts it, and from then on the app works as it would behind a real certificate. It is for
development and demonstrations; in production a TLS reverse proxy or ``--tls-cert`` with a
certificate from a CA does this job (README, "The phone app").

The certificate names ``localhost``, the loopback addresses, the host name and every LAN
IPv4 address. It is kept in ``DATA_DIR/tls/`` and reused across starts, so a phone that
accepted it keeps working; it is made afresh when it is about to expire, when it no longer
names exactly this machine's names (the laptop moved to another network), or when the files
are damaged. The key is a P-256 key in a file of mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qrgate.tls import CheckedPair, TlsFileError, check_pair

TLS_DIR: Final = "tls"
CERT_FILE: Final = "dev-cert.pem"
KEY_FILE: Final = "dev-key.pem"
VALIDITY: Final = timedelta(days=365)
# Made afresh this long before it expires, so a server started on its last day does not
# start serving an expired certificate during the run.
RENEW_BEFORE: Final = timedelta(days=1)
# A phone whose clock is a few minutes behind must not see a certificate from the future.
BACKDATE: Final = timedelta(minutes=10)
LOOPBACK_NAMES: Final = ("localhost", "127.0.0.1", "::1")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, kw_only=True)
class DevCertificate:
    cert_file: Path
    key_file: Path
    # True when made by this call, False when an earlier one was reused.
    created: bool
    not_after: datetime


def subject_names(*, hostname: str, addresses: Sequence[str]) -> frozenset[str | IpAddress]:
    """What the certificate must name: DNS names as text, addresses as IP addresses."""
    names: set[str | IpAddress] = set()
    for given in (*LOOPBACK_NAMES, hostname, *addresses):
        name = given.strip()
        if not name:
            continue
        try:
            names.add(ipaddress.ip_address(name))
        except ValueError:
            names.add(name.lower())
    return frozenset(names)


def ensure_dev_certificate(data_dir: Path, *, hostname: str, addresses: Sequence[str],
                           now: datetime) -> DevCertificate:
    """The development certificate in ``data_dir/tls``: the one there if it is still good
    for ``hostname`` and ``addresses`` at ``now`` (an aware UTC time), else a new one."""
    directory = data_dir / TLS_DIR
    cert_file, key_file = directory / CERT_FILE, directory / KEY_FILE
    wanted = subject_names(hostname=hostname, addresses=addresses)
    existing = _reusable(cert_file, key_file, wanted=wanted, now=now)
    if existing is not None:
        _owner_only(key_file)
        return DevCertificate(cert_file=cert_file, key_file=key_file, created=False,
                              not_after=existing.certificate.not_valid_after_utc)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key, hostname=hostname, names=wanted, now=now)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _replace(key_file, key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()), mode=0o600)
    _replace(cert_file, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return DevCertificate(cert_file=cert_file, key_file=key_file, created=True,
                          not_after=certificate.not_valid_after_utc)


def certificate_names(certificate: x509.Certificate) -> frozenset[str | IpAddress]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return frozenset()
    names: set[str | IpAddress] = {
        name.lower() for name in san.value.get_values_for_type(x509.DNSName)}
    for address in san.value.get_values_for_type(x509.IPAddress):
        # A certificate may name a network; a server's certificate names addresses.
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            names.add(address)
    return frozenset(names)


def _reusable(cert_file: Path, key_file: Path, *, wanted: frozenset[str | IpAddress],
              now: datetime) -> CheckedPair | None:
    if not (cert_file.exists() and key_file.exists()):
        return None
    try:
        pair = check_pair(cert_file, key_file)
    except TlsFileError:
        return None  # damaged or mismatched: ours to replace
    certificate = pair.certificate
    if now + RENEW_BEFORE >= certificate.not_valid_after_utc:
        return None
    if now < certificate.not_valid_before_utc:
        return None  # the clock went back: it would not be valid yet
    if certificate_names(certificate) != wanted:
        return None
    return pair


def _self_signed(key: ec.EllipticCurvePrivateKey, *, hostname: str,
                 names: frozenset[str | IpAddress], now: datetime) -> x509.Certificate:
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qrgate development"),
        x509.NameAttribute(NameOID.COMMON_NAME, (hostname or "localhost")[:64]),
    ])
    dns = sorted(name for name in names if isinstance(name, str))
    ips = sorted((name for name in names if not isinstance(name, str)), key=str)
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    alternative_names += [x509.IPAddress(address) for address in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def _replace(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``path`` whole or not at all, created with ``mode`` (never wider first)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _owner_only(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
