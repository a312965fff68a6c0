"""The certificate and key ``qrgate serve`` speaks https with, checked before it listens.

uvicorn would find a bad file only once it starts, and say so with a traceback from
``ssl``'s ``[SSL] PEM lib``. Here each way the pair can be wrong gets its own sentence that
names the file: unreadable, not PEM, an encrypted key, a key that belongs to another
certificate. The last step loads the pair exactly as uvicorn will (``load_cert_chain``), so
what passes here also starts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes


class TlsFileError(Exception):
    """A certificate or key file that cannot serve https; the message is one sentence."""


@dataclass(frozen=True, kw_only=True)
class CheckedPair:
    cert_file: Path
    key_file: Path
    # The server's own certificate: the first of the chain.
    certificate: x509.Certificate

    def expired(self, *, now: datetime) -> bool:
        return now >= self.certificate.not_valid_after_utc


def check_pair(cert_file: Path, key_file: Path) -> CheckedPair:
    """Raise :class:`TlsFileError` unless ``cert_file`` (PEM, the server's certificate first,
    then any intermediates) and ``key_file`` (an unencrypted PEM private key) go together."""
    chain = _certificates(cert_file)
    key = _private_key(key_file)
    if _spki(key.public_key()) != _spki(chain[0].public_key()):
        raise TlsFileError(f"{key_file} is not the key of the certificate in {cert_file}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as error:
        raise TlsFileError(f"cannot use {cert_file} with {key_file}: "
                           f"{error.strerror or error}") from None
    return CheckedPair(cert_file=cert_file, key_file=key_file, certificate=chain[0])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        text = (error.strerror or type(error).__name__).lower()
        raise TlsFileError(f"cannot read {path}: {text}") from None


def _certificates(path: Path) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(_read(path))
    except ValueError:
        raise TlsFileError(f"{path} holds no PEM certificate") from None
    return chain


def _private_key(path: Path) -> PrivateKeyTypes:
    data = _read(path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        # uvicorn would stop at start and ask for the password on the terminal.
        raise TlsFileError(f"{path} is an encrypted key: give it unencrypted "
                           "(readable by the server's user only)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsFileError(f"{path} holds no PEM private key") from None


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
