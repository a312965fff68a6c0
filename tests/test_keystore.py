from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from qrgate.core.cose import parse_sign1, verify_sign1
from qrgate.core.keyring import kid_for
from qrgate.errors import Conflict, InvalidField, NotFound, UnknownKey
from qrgate.keystore import (
    ENV_KEK_FILE,
    ENV_SIGNING_KEY_FILE,
    ENV_VERIFY_KEY_FILES,
    load_or_create,
    retire,
    rotate,
)

NOW = 1_700_000_000.0


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


def test_first_start_layout_and_permissions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    material = load_or_create(data_dir, env={})
    keys = data_dir / "keys"
    kid = material.keyring.active_kid
    pem = keys / f"signing-{kid.hex()}.pem"
    assert _mode(data_dir) == 0o700
    assert _mode(keys) == 0o700
    assert _mode(pem) == 0o600
    assert _mode(keys / "kek") == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (keys / "active").read_text().strip() == kid.hex()
    assert (keys / "retired").read_text() == ""
    assert (keys / "kek").read_bytes() == material.kek
    assert len(material.kek) == 32
    assert sorted(p.name for p in keys.iterdir()) == sorted(["active", "retired", "kek", pem.name])
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert material.kek.hex() not in repr(material)


def test_second_start_loads_the_same_material(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, env={})
    second = load_or_create(tmp_path, env={})
    assert second.keyring.active_kid == first.keyring.active_kid
    assert second.kek == first.kek
    message = parse_sign1(first.keyring.sign(b"x"))
    verify_sign1(message, public_key=second.keyring.public_key(first.keyring.active_kid))


def test_existing_data_dir_is_fine(tmp_path: Path) -> None:
    (tmp_path / "other-stuff").write_text("hello")
    load_or_create(tmp_path, env={})
    assert (tmp_path / "other-stuff").read_text() == "hello"


def test_rotate_keeps_old_key_verifying_until_retired(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, env={})
    old_kid = first.keyring.active_kid
    signed_before = parse_sign1(first.keyring.sign(b"old code"))

    new_kid = rotate(tmp_path, now=NOW)
    assert new_kid != old_kid
    after = load_or_create(tmp_path, env={})
    assert after.keyring.active_kid == new_kid
    assert after.keyring.active.created_at == NOW
    assert set(after.keyring.public_keys()) == {old_kid, new_kid}
    verify_sign1(signed_before, public_key=after.keyring.public_key(old_kid))
    assert _mode(tmp_path / "keys" / f"signing-{new_kid.hex()}.pem") == 0o600
    assert after.kek == first.kek

    retire(tmp_path, old_kid)
    retire(tmp_path, old_kid)  # idempotent
    assert (tmp_path / "keys" / "retired").read_text() == old_kid.hex() + "\n"
    final = load_or_create(tmp_path, env={})
    assert set(final.keyring.public_keys()) == {new_kid}
    with pytest.raises(UnknownKey):
        final.keyring.public_key(old_kid)


def test_cannot_retire_active_or_unknown(tmp_path: Path) -> None:
    kid = load_or_create(tmp_path, env={}).keyring.active_kid
    with pytest.raises(Conflict):
        retire(tmp_path, kid)
    with pytest.raises(NotFound):
        retire(tmp_path, b"\x00" * 8)


def test_rotate_needs_file_managed_keys(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        rotate(tmp_path, now=NOW)


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
    assert material.keyring.active_kid == kid_for(active.public_key())
    assert set(material.keyring.public_keys()) == {
        kid_for(active.public_key()),
        kid_for(older_private.public_key()),
        kid_for(older_public.public_key()),
    }
    # Only the KEK was generated; nothing was written for the signing keys.
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == ["kek"]
    assert load_or_create(data_dir, env=env).kek == material.kek


def test_verify_key_files_add_to_file_managed_keys(tmp_path: Path) -> None:
    extra = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "extra.pem").write_bytes(_public_pem(extra))
    material = load_or_create(
        tmp_path / "data", env={ENV_VERIFY_KEY_FILES: str(tmp_path / "extra.pem")}
    )
    assert kid_for(extra.public_key()) in material.keyring.public_keys()
    assert len(material.keyring.public_keys()) == 2


@pytest.mark.parametrize("hex_form", [False, True])
def test_kek_from_env(tmp_path: Path, hex_form: bool) -> None:
    kek = os.urandom(32)
    kek_file = tmp_path / "kek.bin"
    kek_file.write_bytes((kek.hex() + "\n").encode() if hex_form else kek)
    data_dir = tmp_path / "data"
    material = load_or_create(data_dir, env={ENV_KEK_FILE: str(kek_file)})
    assert material.kek == kek
    assert not (data_dir / "keys" / "kek").exists()
    assert (data_dir / "keys" / "active").exists()


def test_everything_from_env_writes_no_keys(tmp_path: Path) -> None:
    (tmp_path / "active.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    (tmp_path / "kek").write_bytes(os.urandom(32))
    env = {
        ENV_SIGNING_KEY_FILE: str(tmp_path / "active.pem"),
        ENV_KEK_FILE: str(tmp_path / "kek"),
    }
    load_or_create(tmp_path / "data", env=env)
    assert not (tmp_path / "data" / "keys").exists()


def test_empty_env_values_count_as_unset(tmp_path: Path) -> None:
    env = {ENV_SIGNING_KEY_FILE: "", ENV_KEK_FILE: " ", ENV_VERIFY_KEY_FILES: ""}
    material = load_or_create(tmp_path, env=env)
    assert (tmp_path / "keys" / "kek").read_bytes() == material.kek


@pytest.mark.parametrize("content", [b"", b"short", b"z" * 64, os.urandom(33), b"ab" * 31])
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


def _bad_pem_files(tmp_path: Path) -> dict[str, bytes]:
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
        path.write_bytes(_bad_pem_files(tmp_path)[name])
    with pytest.raises(InvalidField):
        load_or_create(tmp_path / "data", env={ENV_SIGNING_KEY_FILE: str(path)})


@pytest.mark.parametrize("name", ["p384", "rsa", "garbage", "missing"])
def test_bad_verify_key_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "key.pem"
    if name != "missing":
        path.write_bytes(_bad_pem_files(tmp_path)[name])
    with pytest.raises(InvalidField):
        load_or_create(tmp_path / "data", env={ENV_VERIFY_KEY_FILES: str(path)})


def test_inconsistent_key_directory_is_refused(tmp_path: Path) -> None:
    kid = load_or_create(tmp_path, env={}).keyring.active_kid
    keys = tmp_path / "keys"
    pem = keys / f"signing-{kid.hex()}.pem"
    # A PEM whose name does not match its key.
    pem.rename(keys / "signing-0000000000000000.pem")
    with pytest.raises(InvalidField):
        load_or_create(tmp_path, env={})
    # The active key has no file.
    (keys / "signing-0000000000000000.pem").unlink()
    with pytest.raises(InvalidField):
        load_or_create(tmp_path, env={})
    (keys / "active").write_text("not hex\n")
    with pytest.raises(InvalidField):
        load_or_create(tmp_path, env={})


def test_missing_active_file_is_not_papered_over(tmp_path: Path) -> None:
    load_or_create(tmp_path, env={})
    rotate(tmp_path, now=NOW)
    (tmp_path / "keys" / "active").unlink()
    with pytest.raises(InvalidField, match="active"):
        load_or_create(tmp_path, env={})
    with pytest.raises(InvalidField):
        rotate(tmp_path, now=NOW)
    assert len(list((tmp_path / "keys").glob("signing-*.pem"))) == 2


def test_first_signing_key_created_in_existing_keys_dir(tmp_path: Path) -> None:
    """After running on an env-provided key, dropping the env falls back to files."""
    (tmp_path / "active.pem").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    load_or_create(tmp_path / "data", env={ENV_SIGNING_KEY_FILE: str(tmp_path / "active.pem")})
    material = load_or_create(tmp_path / "data", env={})
    keys = tmp_path / "data" / "keys"
    assert (keys / "active").read_text().strip() == material.keyring.active_kid.hex()
    assert _mode(keys / f"signing-{material.keyring.active_kid.hex()}.pem") == 0o600
