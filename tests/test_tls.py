"""Checking the certificate and key ``qrgate serve`` is given (qrgate.tls): each way a pair
can be wrong is one sentence that names the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from qrgate.tls import TlsFileError, check_pair

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def certificate(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *,
                not_after: datetime = NOW + timedelta(days=30)) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))


def write_pair(directory: Path, *, key: ec.EllipticCurvePrivateKey | None = None,
               cert_key: ec.EllipticCurvePrivateKey | None = None,
               not_after: datetime = NOW + timedelta(days=30),
               password: bytes | None = None) -> tuple[Path, Path]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate(cert_key or key, not_after=not_after)
                          .public_bytes(serialization.Encoding.PEM))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption))
    return cert_file, key_file


def test_a_good_pair(tmp_path: Path) -> None:
    cert_file, key_file = write_pair(tmp_path)
    pair = check_pair(cert_file, key_file)
    assert pair.certificate.subject.rfc4514_string() == "CN=test"
    assert not pair.expired(now=NOW)
    assert pair.expired(now=NOW + timedelta(days=31))


def test_an_rsa_pair_with_a_chain(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    # The server's certificate first, then an intermediate.
    cert_file.write_bytes(certificate(key).public_bytes(serialization.Encoding.PEM)
                          + certificate(other).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    check_pair(cert_file, key_file)


def refusal(cert_file: Path, key_file: Path) -> str:
    with pytest.raises(TlsFileError) as refused:
        check_pair(cert_file, key_file)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_missing_files(tmp_path: Path) -> None:
    cert_file, key_file = write_pair(tmp_path)
    assert refusal(tmp_path / "nope.pem", key_file) == (
        f"cannot read {tmp_path / 'nope.pem'}: no such file or directory")
    assert refusal(cert_file, tmp_path / "nope.key") == (
        f"cannot read {tmp_path / 'nope.key'}: no such file or directory")
    assert refusal(tmp_path, key_file) == f"cannot read {tmp_path}: is a directory"


def test_files_that_are_not_pem(tmp_path: Path) -> None:
    cert_file, key_file = write_pair(tmp_path)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a certificate\n")
    assert refusal(garbage, key_file) == f"{garbage} holds no PEM certificate"
    assert refusal(cert_file, garbage) == f"{garbage} holds no PEM private key"
    # The certificate given as the key and the other way round.
    assert refusal(cert_file, cert_file) == f"{cert_file} holds no PEM private key"
    assert refusal(key_file, key_file) == f"{key_file} holds no PEM certificate"


def test_an_encrypted_key(tmp_path: Path) -> None:
    cert_file, key_file = write_pair(tmp_path, password=b"secret")
    assert refusal(cert_file, key_file).startswith(f"{key_file} is an encrypted key")


def test_a_key_of_another_certificate(tmp_path: Path) -> None:
    cert_file, key_file = write_pair(tmp_path, cert_key=ec.generate_private_key(ec.SECP256R1()))
    assert refusal(cert_file, key_file) == (
        f"{key_file} is not the key of the certificate in {cert_file}")
