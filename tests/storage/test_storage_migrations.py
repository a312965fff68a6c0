"""The hand-reviewed migration must build exactly Base.metadata, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from qrgate.core.audit_chain import GENESIS
from qrgate.storage.models import Base
from qrgate.storage.schema import current_revision, head_revision, upgrade
from support.together import run_together


def test_migrated_schema_equals_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        conn.rollback()
    assert differences == []


def test_every_model_table_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_revision_before_and_after(make_engine: Callable[[], Engine]) -> None:
    fresh = make_engine()
    assert current_revision(fresh) is None
    upgrade(fresh)
    assert current_revision(fresh) == head_revision() == "0009"


def test_upgrade_is_idempotent_and_seeds_audit_head(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, seq, hash FROM audit_head")).all()
        conn.rollback()
    assert [(row[0], row[1], bytes(row[2])) for row in rows] == [(1, 0, GENESIS)]


NODE_SCRIPT = """
import sys
from qrgate.storage.db import create_engine_for
from qrgate.storage.schema import upgrade
engine = create_engine_for(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
try:
    upgrade(engine)
finally:
    engine.dispose()
"""


def test_processes_starting_together_migrate_once(
    database_url: str, make_engine: Callable[[], Engine]
) -> None:
    """Separate processes, as separate nodes would be: only database locks can help."""
    outcomes = run_together(NODE_SCRIPT, args=[database_url], envs=[None] * 3)
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    engine = make_engine()
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 1
        conn.rollback()


def test_threads_starting_together_migrate_once(make_engine: Callable[[], Engine]) -> None:
    engines = [make_engine() for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(node: Engine) -> None:
        barrier.wait()
        try:
            upgrade(node)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(node,)) for node in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(engines[0]) == head_revision()
