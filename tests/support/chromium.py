"""How the browser tests start Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium's own background connections (updates, sync, QUIC probes) are
# refused on a closed network and slow every launch down.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's Chromium "
                    "(apt-get update && apt-get install -y chromium)", pytrace=False)
