"""Signing keys in the database: rotation and retirement reach running nodes without a
restart, rows that do not open under the KEK are not trusted, nodes starting together agree
on one active key, and the key files of earlier versions are imported once.

Real servers and real databases (SQLite, and PostgreSQL when configured), no mocks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qrgate.cli.admin import retire_key, rotate_keys
from qrgate.cli.main import cli
from qrgate.clients.relying_party import ApiError
from qrgate.config import Settings
from qrgate.core.aead import SecretBox
from qrgate.core.codes import peek_kid
from qrgate.core.cose import parse_sign1, sign1, verify_sign1
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey
from qrgate.errors import InvalidField, NotFound, UnknownKey
from qrgate.key_refresher import KeyRefresher
from qrgate.keys import LiveKeys, seal_key
from qrgate.keystore import ENV_KEK_FILE, KeyMaterial
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage import signing_keys as table
from qrgate.storage.audit import search_audit
from qrgate.storage.db import create_engine_for
from qrgate.storage.models import signing_keys
from qrgate.storage.signing_keys import KeyState
from support.legacy_keys import kid_of, write_legacy_ring
from support.stack import Stack, clock, stack_factory, twin
from support.together import run_together

__all__ = ["clock", "stack_factory"]

FROM_FILES = ("qrgate: error: conflict: keys come from QRGATE_SIGNING_KEY_FILE: rotate by "
              "deploying a new file and listing the old one in QRGATE_VERIFY_KEY_FILES")


# --- helpers -------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], *, seconds: float = 15.0) -> None:
    """Poll ``check`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        time.sleep(0.02)


def env_of(data_dir: Path, database_url: str, **more: str) -> dict[str, str]:
    return {"QRGATE_DATA_DIR": str(data_dir), "QRGATE_DATABASE_URL": database_url, **more}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["admin", "keys", *args], env=env)


def ok(env: dict[str, str], *args: str) -> dict[str, object]:
    result = invoke(env, *args)
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def listed_states(env: dict[str, str]) -> dict[str, str]:
    keys = ok(env, "list")["keys"]
    assert isinstance(keys, list)
    return {entry["kid"]: entry["state"] for entry in keys}


def jwks_of(node: Stack) -> PublicKeySet:
    return PublicKeySet.from_jwks(node.rt.keyring.verifier.to_jwks())


def signed_by(key: SigningKey) -> Callable[[KeyRing], bool]:
    """A reader that verifies a COSE_Sign1 made with ``key`` against a ring."""
    message = parse_sign1(sign1(payload=b"code", private_key=key.private_key, kid=key.kid))

    def read(ring: KeyRing) -> bool:
        verify_sign1(message, public_key=ring.public_key(key.kid))
        return True

    return read


@pytest.fixture
def runtimes(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Runtime]]:
    """Nodes without an HTTP server (so no refresher): ``build(data_dir=...)``."""
    made: list[Runtime] = []

    def build(data_dir: Path | None = None, **env: str) -> Runtime:
        settings = Settings.from_env(env_of(data_dir or tmp_path / "data", database_url, **env))
        rt = build_runtime(settings)
        made.append(rt)
        return rt

    yield build
    for rt in made:
        rt.close()


def rows(engine: Engine) -> dict[bytes, table.KeyRow]:
    with engine.connect() as conn:
        found = {row.kid: row for row in table.all_keys(conn)}
        conn.rollback()
    return found


# --- the review finding ----------------------------------------------------------------------


def test_review_12_rotation_reaches_every_node_without_restart(
    stack_factory: Callable[..., Stack], database_url: str
) -> None:
    """Review finding 12: ``keys rotate`` only changed the files of the node it ran on and
    took effect after a restart. Now two running nodes of one deployment follow it."""
    first = stack_factory(key_refresh_seconds=1)
    second = stack_factory(join=first, key_refresh_seconds=1)
    phone = first.enrolled_phone()
    on_second = twin(phone, second)
    old_kid = first.rt.keyring.active_kid
    assert second.rt.keyring.active_kid == old_kid
    before_rotation, _ = first.start()
    to_be_retired, _ = first.start()
    assert peek_kid(before_rotation["code"]) == old_kid

    rotation = rotate_keys(first.rt)  # what `qrgate admin keys rotate` runs
    new_kid = rotation.active_kid
    assert rotation.previous_kid == old_kid and new_kid != old_kid
    assert first.rt.keyring.active_kid == new_kid  # the rotating node follows at once

    # (1) A code node 1 signs with the new key verifies on node 2 at once: the phone (which
    # fetched the new JWKS) scans a confirmation started on node 1 against node 2.
    started, _ = first.start()
    assert peek_kid(started["code"]) == new_kid
    on_second.server_keys = jwks_of(first)
    assert on_second.scan_text(started["code"])["challenge_id"] == started["challenge_id"]
    assert on_second.decide(started["challenge_id"], approve=True)["state"] == "approved"

    # (2) Node 2 signs new codes with the new key.
    wait_until(lambda: second.rt.keyring.active_kid == new_kid)
    on_node_two, _ = second.start()
    assert peek_kid(on_node_two["code"]) == new_kid
    on_second.scan_text(on_node_two["code"])

    # (3) Codes signed before the rotation still verify, on both nodes.
    assert on_second.scan_text(before_rotation["code"])["challenge_id"] == (
        before_rotation["challenge_id"])

    with first.rt.read() as conn:
        (audited,) = search_audit(conn, event="admin.keys_rotate")
    assert audited["detail"] == {"actor": "cli", "active_kid": new_kid.hex(),
                                 "previous_kid": old_kid.hex()}

    # Retire the old key with the command, as an operator on node 1 would.
    env = env_of(first.rt.settings.data_dir, database_url)
    assert ok(env, "retire", old_kid.hex()) == {"retired": old_kid.hex(), "changed": True}
    wait_until(lambda: old_kid not in second.rt.keyring.public_keys())
    with pytest.raises(ApiError) as refused:
        on_second.scan_text(to_be_retired["code"], verify_offline=False)
    assert refused.value.code == "unknown_key"
    assert listed_states(env) == {old_kid.hex(): "retired", new_kid.hex(): "active"}


# --- how a node learns of a change -----------------------------------------------------------


def test_a_node_follows_a_rotation_by_polling(
    stack_factory: Callable[..., Stack], database_url: str
) -> None:
    """No code with the new kid arrives, and on SQLite no hint crosses processes: the poll
    every QRGATE_KEY_REFRESH_SECONDS still brings the node along."""
    node = stack_factory(key_refresh_seconds=1)
    env = env_of(node.rt.settings.data_dir, database_url)
    new_kid = bytes.fromhex(str(ok(env, "rotate")["active_kid"]))  # another process's runtime
    wait_until(lambda: node.rt.keyring.active_kid == new_kid)
    assert new_kid in jwks_of(node)


# PostgreSQL only: SQLite processes hear no hints from each other, they poll (see above).
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_postgresql_notification_beats_the_poll(
    stack_factory: Callable[..., Stack], database_url: str
) -> None:
    node = stack_factory(key_refresh_seconds=300)
    env = env_of(node.rt.settings.data_dir, database_url)
    new_kid = bytes.fromhex(str(ok(env, "rotate")["active_kid"]))
    # Far below the 300 s poll: the NOTIFY sent by the command's transaction woke the node.
    wait_until(lambda: node.rt.keyring.active_kid == new_kid, seconds=10)


def test_an_unknown_kid_refreshes_at_most_once_a_second(
    runtimes: Callable[..., Runtime],
) -> None:
    signer, verifier = runtimes(), runtimes()
    now = [100.0]
    verifier.keys = LiveKeys(engine=verifier.engine, box=verifier.box, events=verifier.events,
                             extra_verify={}, managed=True, monotonic=lambda: now[0])
    rotate_keys(signer)
    fresh = signer.keyring.active
    assert fresh.kid not in verifier.keyring.public_keys()
    assert verifier.keys.verifying(signed_by(fresh))  # refreshed, then verified

    # A forged kid costs one refresh; another unknown kid within that second costs none,
    # even a genuine one; after the second it is found.
    now[0] += 1.5
    with pytest.raises(UnknownKey):
        verifier.keys.verifying(signed_by(SigningKey.generate(now=0)))
    rotate_keys(signer)
    newer = signer.keyring.active
    now[0] += 0.5
    with pytest.raises(UnknownKey):
        verifier.keys.verifying(signed_by(newer))
    now[0] += 0.6
    assert verifier.keys.verifying(signed_by(newer))


# --- trust -----------------------------------------------------------------------------------


def test_a_key_planted_without_the_kek_is_not_trusted(
    runtimes: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtimes()
    active_kid = rt.keyring.active_kid
    planted = SigningKey.generate(now=0)
    with rt.engine.begin() as conn:
        table.insert_keys(conn, [seal_key(SecretBox(os.urandom(32)), planted,
                                          state=KeyState.VERIFY)])
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="qrgate.keys"):
        assert not rt.keys.refresh()
        assert not rt.keys.refresh()
    assert [r.getMessage() for r in caplog.records if r.name == "qrgate.keys"] == [
        f"signing key {planted.kid.hex()} in the database does not open under this KEK; "
        "not trusted"]  # once, not once per refresh
    assert planted.kid not in rt.keyring.public_keys()
    assert planted.kid not in rt.keys.all_public_keys()
    with pytest.raises(UnknownKey):
        rt.keys.verifying(signed_by(planted))
    assert {info.kid: info.trusted for info in rt.keys.describe()} == {
        active_kid: True, planted.kid: False}

    # Nor can sealed keys be moved between rows: the kid is in the AEAD context.
    rotate_keys(rt)
    rotate_keys(rt)
    stored = rows(rt.engine)
    first, second = (kid for kid, row in stored.items()
                     if row.state is KeyState.VERIFY and kid != planted.kid)
    with rt.engine.begin() as conn:
        for kid, other in ((first, second), (second, first)):
            conn.execute(signing_keys.update().where(signing_keys.c.kid == kid)
                         .values(private_key_enc=stored[other].private_key_enc))
    rt.keys.refresh()
    assert first not in rt.keyring.public_keys() and second not in rt.keyring.public_keys()
    assert {first, second, planted.kid}.isdisjoint(rt.keys.all_public_keys())


def test_a_planted_active_key_changes_nothing(runtimes: Callable[..., Runtime]) -> None:
    rt = runtimes()
    kept = rt.keyring.active_kid
    planted = SigningKey.generate(now=0)
    with rt.engine.begin() as conn:
        conn.execute(signing_keys.update().values(state="verify"))
        table.insert_keys(conn, [seal_key(SecretBox(os.urandom(32)), planted,
                                          state=KeyState.ACTIVE)])
    assert not rt.keys.refresh_quietly()
    assert rt.keyring.active_kid == kept  # still signing with the trusted key
    with pytest.raises(InvalidField) as refused:
        runtimes()  # a node starting now refuses to run without a trusted active key
    assert refused.value.code == "bad_key_material"


# --- the first start -------------------------------------------------------------------------


NODE_SCRIPT = """
import sys
from qrgate.config import Settings
from qrgate.runtime import build_runtime
settings = Settings.from_env()
print("ready", flush=True)
sys.stdin.readline()
rt = build_runtime(settings, migrate=False)
try:
    print(rt.keyring.active_kid.hex(), flush=True)
finally:
    rt.close()
"""


def test_nodes_starting_together_agree_on_one_active_key(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    """Separate processes with separate data directories and one KEK file, as nodes are;
    released together on a migrated database without keys."""
    kek_file = tmp_path / "kek"
    kek_file.write_bytes(os.urandom(32))
    outcomes = run_together(NODE_SCRIPT, envs=[
        {**os.environ, **env_of(tmp_path / f"node{i}", database_url,
                                **{ENV_KEK_FILE: str(kek_file)})} for i in range(4)])
    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], outcomes
    kids = {stdout.strip() for _, stdout, _ in outcomes}
    stored = rows(engine)
    assert len(kids) == 1 and [kid.hex() for kid in stored] == list(kids)
    assert [row.state for row in stored.values()] == [KeyState.ACTIVE]


def test_a_node_that_loses_the_race_uses_the_winners_key(
    tmp_path: Path, database_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The race made deterministic: node A's first key is inserted but not committed while
    node B seeds. On PostgreSQL B passes the empty check, blocks on the unique index and
    gets the violation; on SQLite B waits at BEGIN IMMEDIATE and finds A's key."""
    caplog.set_level(logging.INFO, logger="qrgate.keys")
    box = SecretBox(os.urandom(32))
    winner = SigningKey.generate(now=1)
    material = KeyMaterial(kek=b"", signing_key=None, verify_keys={})
    opened: list[LiveKeys] = []
    other = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            conn.begin()
            table.insert_keys(conn, [seal_key(box, winner, state=KeyState.ACTIVE)])
            loser = threading.Thread(target=lambda: opened.append(LiveKeys.open(
                engine=other, box=box, events=_NoEvents(), material=material,
                data_dir=tmp_path, now=2)))
            loser.start()
            if database_url.startswith("postgresql"):
                wait_until(lambda: _lock_waits(engine) > 0)
            conn.commit()
        loser.join(timeout=30)
    finally:
        other.dispose()
    assert [live.ring.active_kid for live in opened] == [winner.kid]
    assert list(rows(engine)) == [winner.kid]
    if database_url.startswith("postgresql"):
        assert "another node stored the first signing keys; using those" in caplog.text


def _lock_waits(engine: Engine) -> int:
    with engine.connect() as conn:
        count = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one()
        conn.rollback()
    return int(count)


class _NoEvents:
    """An event bus for a node that publishes nothing in the test that uses it."""

    def publish(self, conn: object, *, topic: str, state: str) -> None:
        raise AssertionError("nothing is published here")

    def subscribe(self, topic: str) -> object:
        raise AssertionError("nothing subscribes here")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def test_first_start_imports_the_legacy_key_files(
    tmp_path: Path, runtimes: Callable[..., Runtime]
) -> None:
    data_dir = tmp_path / "data"
    legacy = write_legacy_ring(data_dir, verify=1, retired=1)
    files = {path.name: path.read_bytes() for path in (data_dir / "keys").iterdir()}
    (active,), (verify,), (retired,) = legacy["active"], legacy["verify"], legacy["retired"]

    rt = runtimes(data_dir)
    stored = rows(rt.engine)
    assert {kid: row.state for kid, row in stored.items()} == {
        kid_of(active): KeyState.ACTIVE, kid_of(verify): KeyState.VERIFY,
        kid_of(retired): KeyState.RETIRED}
    assert stored[kid_of(retired)].retired_at is not None
    assert rt.keyring.active_kid == kid_of(active)
    # Codes signed by the old files keep verifying; the retired key verifies only
    # checkpoints.
    for key in (active, verify):
        assert rt.keys.verifying(signed_by(SigningKey.from_private_key(key, created_at=0)))
    with pytest.raises(UnknownKey):
        rt.keys.verifying(signed_by(SigningKey.from_private_key(retired, created_at=0)))
    assert kid_of(retired) in rt.keys.all_public_keys()
    # The files are left as they were, and not read again.
    assert {path.name: path.read_bytes() for path in (data_dir / "keys").iterdir()} == files
    rotate_keys(rt)
    assert runtimes(data_dir).keyring.active_kid == rt.keyring.active_kid


# --- keys from files ---------------------------------------------------------------------------


def _pem_file(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.mark.anyio
async def test_keys_from_files_refuse_rotation_and_run_no_refresher(
    tmp_path: Path, database_url: str
) -> None:
    signing = ec.generate_private_key(ec.SECP256R1())
    env = env_of(tmp_path / "data", database_url,
                 QRGATE_SIGNING_KEY_FILE=str(_pem_file(tmp_path / "signing.pem", signing)))
    for args in (("rotate",), ("retire", "00" * 8)):
        result = invoke(env, *args)
        assert result.exit_code == 1
        assert result.stderr.strip() == FROM_FILES
    listed = ok(env, "list")
    assert listed["active"] == kid_of(signing).hex()
    assert listed["keys"] == [{"kid": kid_of(signing).hex(), "state": "active",
                               "created_at": listed["keys"][0]["created_at"],  # type: ignore[index]
                               "retired_at": None, "source": "QRGATE_SIGNING_KEY_FILE"}]
    rt = build_runtime(Settings.from_env(env))
    try:
        refresher = KeyRefresher(rt.keys, events=rt.events, interval=0.01)
        refresher.start()
        assert not refresher.running
        await refresher.close()
    finally:
        rt.close()


def test_verify_key_files_add_to_the_database_keys(
    tmp_path: Path, runtimes: Callable[..., Runtime]
) -> None:
    extra = ec.generate_private_key(ec.SECP256R1())
    rt = runtimes(QRGATE_VERIFY_KEY_FILES=str(_pem_file(tmp_path / "old.pem", extra)))
    assert rt.keys.managed
    assert kid_of(extra) in rt.keyring.public_keys()
    rotate_keys(rt)
    assert kid_of(extra) in rt.keyring.public_keys()  # still, after a refresh
    with pytest.raises(NotFound, match="QRGATE_VERIFY_KEY_FILES"):
        retire_key(rt, kid_of(extra))


# --- the refresher and an absent database --------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["sqlite file gone", "postgresql port closed"])
async def test_the_refresher_survives_an_unreachable_database(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The node keeps signing with the keys it has, says so once, and follows the
    database again when it is back."""
    home = build_runtime(Settings(data_dir=tmp_path / "data"))
    home.close()
    database = tmp_path / "data" / "qrgate.db"
    if where == "sqlite file gone":
        (tmp_path / "away").mkdir()
        away = create_engine_for(f"sqlite:///{tmp_path / 'away' / 'qrgate.db'}")
        shutil.rmtree(tmp_path / "away")  # the file and its directory are gone
    else:
        away = create_engine_for("postgresql+psycopg://postgres@127.0.0.1:1/test"
                                 "?connect_timeout=2")
    live = CountingKeys(engine=away, box=home.box, events=home.events, extra_verify={},
                        managed=True, ring=home.keyring)
    refresher = KeyRefresher(live, events=home.events, interval=0.01)
    caplog.clear()
    try:
        with caplog.at_level(logging.INFO, logger="qrgate.keys"):
            refresher.start()
            await _until(lambda: live.turns >= 5)
            assert refresher.running
            assert live.ring is home.keyring
            assert [r.levelname for r in caplog.records] == ["WARNING"]
            assert "signing keys not refreshed, keeping active key" in caplog.text
            if where == "sqlite file gone":
                (tmp_path / "away").mkdir()
                shutil.copy(database, tmp_path / "away" / "qrgate.db")
                away.dispose()  # connections to the missing file are not reused
                await _until(lambda: "works again" in caplog.text)
                assert refresher.running
    finally:
        await refresher.close()
        away.dispose()


class CountingKeys(LiveKeys):
    turns = 0

    def refresh_quietly(self) -> bool:
        self.turns += 1
        return super().refresh_quietly()


async def _until(check: Callable[[], bool], *, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        await anyio.sleep(0.01)


# --- the commands ----------------------------------------------------------------------------


def test_keys_commands_and_audit_verify_after_retirement(
    tmp_path: Path, database_url: str
) -> None:
    env = env_of(tmp_path / "data", database_url)
    first = ok(env, "list")
    old = str(first["active"])
    assert listed_states(env) == {old: "active"}
    made = CliRunner().invoke(cli, ["admin", "org", "create", "acme", "--name", "Acme"], env=env)
    assert made.exit_code == 0, made.output
    checkpoint = CliRunner().invoke(cli, ["audit", "checkpoint"], env=env)
    assert checkpoint.exit_code == 0, checkpoint.output
    assert f"key {old}" in checkpoint.stdout
    rotated = ok(env, "rotate")
    assert rotated["previous_kid"] == old
    new = str(rotated["active_kid"])
    assert listed_states(env) == {old: "verify", new: "active"}
    assert ok(env, "retire", old)["changed"] is True
    assert ok(env, "retire", old)["changed"] is False  # retiring twice changes nothing
    listed = ok(env, "list")["keys"]
    assert isinstance(listed, list)
    (retired,) = [entry for entry in listed if entry["kid"] == old]
    assert retired["state"] == "retired" and retired["retired_at"].endswith("Z")

    refused = invoke(env, "retire", new)
    assert refused.exit_code == 1 and "conflict: the active signing key cannot be retired" in (
        refused.stderr)
    assert invoke(env, "retire", "00" * 8).exit_code == 1
    assert invoke(env, "retire", "not-hex").exit_code == 2

    # The checkpoint signed by a key since retired still verifies.
    verified = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "checkpoints OK: 1 signed" in verified.stdout
