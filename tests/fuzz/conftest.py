"""Fixtures of the schemathesis gate: a seeded stack per database, its credentials, the
schema loaded from the running server, and the gate that sends and records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

from support.fuzz_gate import Budget, Gate, load_schema
from support.fuzz_ledger import Ledger, ServerLog
from support.fuzz_world import World, build_world
from support.stack import Stack, clock, stack, stack_factory

__all__ = ["clock", "stack", "stack_factory"]


@pytest.fixture
def fuzz_budget() -> Budget:
    return Budget.from_env()


@pytest.fixture
def fuzz_world(stack: Stack) -> World:
    return build_world(stack)


@pytest.fixture
def fuzz_schema(stack: Stack, fuzz_world: World, fuzz_budget: Budget) -> schemathesis.BaseSchema:
    return load_schema(fuzz_world, base_url=stack.base_url, budget=fuzz_budget)


@pytest.fixture
def fuzz_gate(fuzz_world: World, database_url: str) -> Iterator[Gate]:
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    with ServerLog().attached() as server_log:
        yield Gate(world=fuzz_world, ledger=Ledger(database), server_log=server_log)
