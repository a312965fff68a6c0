"""The runtime an operator's command works on: the configured database and keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from qrgate.config import Settings

# Imported inside: `qrgate admin --help` must not load the database and crypto modules.
if TYPE_CHECKING:
    from qrgate.runtime import Runtime


@contextmanager
def configured_runtime() -> Iterator[Runtime]:
    from qrgate.runtime import build_runtime

    rt = build_runtime(Settings.from_env())
    try:
        yield rt
    finally:
        rt.close()
