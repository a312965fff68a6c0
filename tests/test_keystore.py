"""What stays in files: the KEK, keys named by the environment, and the legacy ring that
the first start imports into the database (see tests/test_key_rotation.py for that)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from qrgate.core.keyring import SigningKey, kid_for
from qrgate.errors import InvalidField
from qrgate.keystore import (
    ENV_KEK_FILE,
    ENV_SIGNING_KEY_FILE,
    ENV_VERIFY_KEY_FILES,
    load_legacy_ring,
    load_or_create,
)
from support.legacy_keys import kid_of, write_legacy_ring


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, **kw: object) -> bytes:
    fmt = kw.get("fmt", serialization.PrivateFormat.PKCS8)
    assert isinstance(fmt, serialization.PrivateFormat)
    enc = kw.get("enc", serialization.NoEncryption())
    assert isinstance(enc, serialization.KeySerializationEncryption)
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- the KEK -----------------------------------------------------------------------------


def test_first_start_makes_only_the_kek(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    material = load_or_create(data_dir, env={})
    keys = data_dir / "keys"
    assert _mode(data_dir) == 0o700
    assert _mode(keys) == 0o700
    assert _mode(keys / "kek") == 0o600
    assert (keys / "kek").read_bytes() == material.kek
    assert len(material.kek) == 32
    # Signing keys live in the database now: nothing else is written.
    assert sorted(p.name for p in keys.iterdir()) == ["kek"]
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert material.signing_key is None and material.verify_keys == {}
    assert material.kek.hex() not in repr(material)


def test_second_start_loads_the_same_kek(tmp_path: Path) -> None:
    assert load_or_create(tmp_path, env={}).kek == load_or_create(tmp_path, env={}).kek


def test_existing_data_dir_is_fine(tmp_path: Path) -> None:
    (tmp_path / "other-stuff").write_text("hello")
    load_or_create(tmp_path, env={})
    assert (tmp_path / "other-stuff").read_text() == "hello"


@pytest.mark.parametrize("hex_form", [False, True])
def test_kek_from_env(tmp_path: Path, hex_form: bool) -> None:
    kek = os.urandom(32)
    kek_file = tmp_path / "kek.bin"
    kek_file.write_bytes((kek.hex() + "\n").encode() if hex_form else kek)
    data_dir = tmp_path / "data"
    material = load_or_create(data_dir, env={ENV_KEK_FILE: str(kek_file)})
    assert material.kek == kek
    assert not (data_dir / "keys").exists()


def test_empty_env_values_count_as_unset(tmp_path: Path) -> None:
    env = {ENV_SIGNING_KEY_FILE: "", ENV_KEK_FILE: " ", ENV_VERIFY_KEY_FILES: ""}
    material = load_or_create(tmp_path, env=env)
    assert (tmp_path / "keys" / "kek").read_bytes() == material.kek
    assert material.signing_key is None and material.verify_keys == {}


@pytest.mark.parametrize("content", [b"", b"short", b"z" * 64, bytes(range(33)), b"ab" * 31],
                         ids=["empty", "short", "not-hex", "33-bytes", "62-hex"])
def test_bad_kek_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "kek").write_bytes(content)
    with pytest.raises(InvalidField):
        load_or_create(tmp_path / "data", env={ENV_KEK_FILE: str(tmp_path / "kek")})


def test_missing_kek_is_not_regenerated(tmp_path: Path) -> None:
    load_or_create(tmp_path, env={})
    (tmp_path / "keys" / "kek").unlink()
    with pytest.raises(InvalidField, match="refusing"):
        load_or_create(tmp_path, env={})
    assert not (tmp_path / "keys" / "kek").exists()


def test_legacy_keys_dir_without_kek_is_refused(tmp_path: Path) -> None:
    write_legacy_ring(tmp_path)
    (tmp_path / "keys" / "kek").unlink()
    with pytest.raises(InvalidField, match="refusing"):
        load_or_create(tmp_path, env={})


# --- keys named by the environment -------------------------------------------------------


def test_signing_key_from_env(tmp_path: Path) -> None:
    active = ec.generate_private_key(ec.SECP256R1())
    older_private = ec.generate_private_key(ec.SECP256R1())
    older_public = ec.generate_private_key(ec.SECP256R1())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "active.pem").write_bytes(
        _pem(active, fmt=serialization.PrivateFormat.TraditionalOpenSSL)
    )
    (secrets / "older.pem").write_bytes(_pem(older_private))
    (secrets / "older.pub.pem").write_bytes(_public_pem(older_public))
    env = {
        ENV_SIGNING_KEY_FILE: str(secrets / "active.pem"),
        ENV_VERIFY_KEY_FILES: f"{secrets / 'older.pem'}, {secrets / 'older.pub.pem'},",
    }
    data_dir = tmp_path / "data"
    material = load_or_create(data_dir, env=env)
    assert material.signing_key is not None
    assert material.signing_key.kid == kid_for(active.public_key())
    assert set(material.verify_keys) == {
        kid_for(older_private.public_key()),
        kid_for(older_public.public_key()),
    }
    # Only the KEK was generated; nothing was written for the signing keys.
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == ["kek"]
    assert load_or_create(data_dir, env=env).kek == material.kek


def test_everything_from_env_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "active.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    (tmp_path / "kek").write_bytes(os.urandom(32))
    env = {
        ENV_SIGNING_KEY_FILE: str(tmp_path / "active.pem"),
        ENV_KEK_FILE: str(tmp_path / "kek"),
    }
    load_or_create(tmp_path / "data", env=env)
    assert not (tmp_path / "data" / "keys").exists()


def _bad_pem_files() -> dict[str, bytes]:
    return {
        "p384": _pem(ec.generate_private_key(ec.SECP384R1())),
        "rsa": _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        "encrypted": _pem(
            ec.generate_private_key(ec.SECP256R1()),
            enc=serialization.BestAvailableEncryption(b"pw"),
        ),
        "garbage": b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
        "public only": _public_pem(ec.generate_private_key(ec.SECP256R1())),
    }


@pytest.mark.parametrize("name", ["p384", "rsa", "encrypted", "garbage", "public only", "missing"])
def test_bad_signing_key_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "key.pem"
    if name != "missing":
        path.write_bytes(_bad_pem_files()[name])
    with pytest.raises(InvalidField) as raised:
        load_or_create(tmp_path / "data", env={ENV_SIGNING_KEY_FILE: str(path)})
    assert raised.value.code == "bad_key_material"


@pytest.mark.parametrize("name", ["p384", "rsa", "garbage", "missing"])
def test_bad_verify_key_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "key.pem"
    if name != "missing":
        path.write_bytes(_bad_pem_files()[name])
    with pytest.raises(InvalidField):
        load_or_create(tmp_path / "data", env={ENV_VERIFY_KEY_FILES: str(path)})


# --- the legacy ring ---------------------------------------------------------------------


def test_no_legacy_ring(tmp_path: Path) -> None:
    assert load_legacy_ring(tmp_path) is None
    load_or_create(tmp_path, env={})  # keys/ with only the KEK
    assert load_legacy_ring(tmp_path) is None


def test_legacy_ring_keeps_kids_states_and_times(tmp_path: Path) -> None:
    made = write_legacy_ring(tmp_path, verify=2, retired=1)
    kids = {state: [kid_of(key) for key in keys] for state, keys in made.items()}
    active_pem = tmp_path / "keys" / f"signing-{kids['active'][0].hex()}.pem"
    os.utime(active_pem, (1_700_000_000, 1_700_000_000))
    ring = load_legacy_ring(tmp_path)
    assert ring is not None
    assert ring.active.kid == kids["active"][0]
    assert ring.active.created_at == 1_700_000_000
    assert sorted(key.kid for key in ring.verify_only) == sorted(kids["verify"])
    assert [key.kid for key in ring.retired] == kids["retired"]
    assert ring.retired_at == (tmp_path / "keys" / "retired").stat().st_mtime
    assert all(isinstance(key, SigningKey) for key in (*ring.verify_only, *ring.retired))


def test_inconsistent_legacy_ring_is_refused(tmp_path: Path) -> None:
    (active,) = write_legacy_ring(tmp_path, verify=0, retired=0)["active"]
    keys = tmp_path / "keys"
    pem = keys / f"signing-{kid_of(active).hex()}.pem"
    # A PEM whose name does not match its key.
    pem.rename(keys / "signing-0000000000000000.pem")
    with pytest.raises(InvalidField):
        load_legacy_ring(tmp_path)
    # The active key has no file.
    (keys / "signing-0000000000000000.pem").unlink()
    with pytest.raises(InvalidField):
        load_legacy_ring(tmp_path)
    (keys / "active").write_text("not hex\n")
    with pytest.raises(InvalidField):
        load_legacy_ring(tmp_path)


def test_legacy_active_file_missing_is_not_papered_over(tmp_path: Path) -> None:
    write_legacy_ring(tmp_path)
    (tmp_path / "keys" / "active").unlink()
    with pytest.raises(InvalidField, match="active"):
        load_legacy_ring(tmp_path)


def test_legacy_active_key_listed_as_retired_is_refused(tmp_path: Path) -> None:
    (active,) = write_legacy_ring(tmp_path, retired=0)["active"]
    (tmp_path / "keys" / "retired").write_text(kid_of(active).hex() + "\n")
    with pytest.raises(InvalidField, match="retired"):
        load_legacy_ring(tmp_path)
