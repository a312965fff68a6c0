"""Every test of tests/core starts with the caches a fresh process has.

``qrgate.core.ocra`` keeps parsed suites in an ``lru_cache``. Mutation testing
(scripts/mutation.sh) runs each mutant in a child forked from a process that already ran
these tests, and runs only the tests it saw reach the mutated code: with a cache warmed by
an earlier test, a suite's parsing would be reached by no test but the first.
"""

from __future__ import annotations

import pytest

from qrgate.core import ocra


@pytest.fixture(autouse=True)
def _cold_ocra_suite_cache() -> None:
    ocra._compile.cache_clear()
