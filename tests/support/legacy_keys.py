"""The key files earlier versions kept under ``<data_dir>/keys``, laid out by hand."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.keyring import kid_for


def write_legacy_ring(
    data_dir: Path, *, verify: int = 1, retired: int = 1
) -> dict[str, list[ec.EllipticCurvePrivateKey]]:
    """keys/signing-<kid>.pem, keys/active, keys/retired and keys/kek; the keys by state."""
    keys = data_dir / "keys"
    keys.mkdir(parents=True, mode=0o700)
    (keys / "kek").write_bytes(os.urandom(32))
    made: dict[str, list[ec.EllipticCurvePrivateKey]] = {"active": [], "verify": [],
                                                        "retired": []}
    for state, count in (("active", 1), ("verify", verify), ("retired", retired)):
        for _ in range(count):
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            (keys / f"signing-{kid_for(key.public_key()).hex()}.pem").write_bytes(pem)
            made[state].append(key)
    (keys / "active").write_text(kid_of(made["active"][0]).hex() + "\n")
    (keys / "retired").write_text("".join(kid_of(key).hex() + "\n" for key in made["retired"]))
    return made


def kid_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return kid_for(key.public_key())
