"""The development certificate of ``qrgate serve --dev-tls`` (qrgate.dev_tls): what it
names, its key's file mode, and when it is reused or made afresh. Time is an argument."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.dev_tls import (
    CERT_FILE,
    KEY_FILE,
    TLS_DIR,
    VALIDITY,
    certificate_names,
    ensure_dev_certificate,
    subject_names,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
HOST = "laptop"
ADDRESSES = ("192.168.1.20", "10.0.0.7")


def make(data_dir: Path, *, now: datetime = NOW, hostname: str = HOST,
         addresses: tuple[str, ...] = ADDRESSES) -> tuple[bool, bytes]:
    made = ensure_dev_certificate(data_dir, hostname=hostname, addresses=addresses, now=now)
    return made.created, made.cert_file.read_bytes()


def load(data_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((data_dir / TLS_DIR / CERT_FILE).read_bytes())


def test_the_certificate(tmp_path: Path) -> None:
    made = ensure_dev_certificate(tmp_path, hostname=HOST, addresses=ADDRESSES, now=NOW)
    assert made.created
    assert (made.cert_file, made.key_file) == (tmp_path / TLS_DIR / CERT_FILE,
                                               tmp_path / TLS_DIR / KEY_FILE)
    certificate = load(tmp_path)
    assert certificate_names(certificate) == {
        "localhost", HOST, ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.168.1.20"), ipaddress.ip_address("10.0.0.7")}
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert certificate.not_valid_after_utc - NOW == VALIDITY
    assert certificate.not_valid_before_utc < NOW  # a phone a little behind accepts it
    assert certificate.issuer == certificate.subject  # self-signed
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / TLS_DIR).stat().st_mode) == 0o700
    # It loads as a server's pair (tests/cli/test_serve_tls.py makes a client trust it).
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(made.cert_file, made.key_file)


def test_reused_while_good(tmp_path: Path) -> None:
    _, first = make(tmp_path)
    for later in (NOW + timedelta(minutes=1), NOW + VALIDITY - timedelta(days=2)):
        created, again = make(tmp_path, now=later)
        assert not created and again == first
    # The same names in another order or case are the same names.
    created, again = make(tmp_path, hostname=HOST.upper(), addresses=ADDRESSES[::-1])
    assert not created and again == first


@pytest.mark.parametrize(("reason", "now", "hostname", "addresses"), [
    ("expires within a day", NOW + VALIDITY - timedelta(hours=23), HOST, ADDRESSES),
    ("expired", NOW + VALIDITY + timedelta(days=1), HOST, ADDRESSES),
    ("clock went back before it", NOW - timedelta(days=1), HOST, ADDRESSES),
    ("an address changed", NOW, HOST, ("192.168.1.21", "10.0.0.7")),
    ("an address is new", NOW, HOST, (*ADDRESSES, "172.16.0.2")),
    ("an address is gone", NOW, HOST, ADDRESSES[:1]),
    ("the host was renamed", NOW, "desktop", ADDRESSES),
])
def test_made_afresh(tmp_path: Path, reason: str, now: datetime, hostname: str,
                     addresses: tuple[str, ...]) -> None:
    _, first = make(tmp_path)
    created, again = make(tmp_path, now=now, hostname=hostname, addresses=addresses)
    assert created and again != first, reason
    assert certificate_names(load(tmp_path)) == subject_names(hostname=hostname,
                                                              addresses=addresses)


@pytest.mark.parametrize("damage", ["garbage cert", "garbage key", "other key", "no key"])
def test_damaged_files_are_replaced(tmp_path: Path, damage: str) -> None:
    _, first = make(tmp_path)
    cert_file, key_file = tmp_path / TLS_DIR / CERT_FILE, tmp_path / TLS_DIR / KEY_FILE
    if damage == "garbage cert":
        cert_file.write_bytes(b"garbage")
    elif damage == "garbage key":
        key_file.write_bytes(b"garbage")
    elif damage == "other key":
        other = tmp_path / "other"
        make(other)
        key_file.write_bytes((other / TLS_DIR / KEY_FILE).read_bytes())
    else:
        key_file.unlink()
    created, again = make(tmp_path)
    assert created and again != first
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)


def test_a_loosened_key_file_is_tightened(tmp_path: Path) -> None:
    make(tmp_path)
    key_file = tmp_path / TLS_DIR / KEY_FILE
    key_file.chmod(0o644)
    created, _ = make(tmp_path)
    assert not created
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_names() -> None:
    assert subject_names(hostname=" ", addresses=["", "fd00::2", "Box.Local"]) == {
        "localhost", "box.local", ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"), ipaddress.ip_address("fd00::2")}
