"""A one-second, in-process memory of API-key lookups.

Every relying-party request authenticates its API key; the lookup (a join over keys,
applications and organisations) was about a tenth of the server's time per request. Lookups
are remembered for ``TTL`` seconds, per key prefix; the secret is still compared (in
constant time) on every request. So a revoked key, a new policy or a renamed application
takes effect on every node within ``TTL`` seconds, not at once.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from qrgate.accounts import directory
from qrgate.accounts.tokens import split_api_key

if TYPE_CHECKING:
    from qrgate.runtime import Runtime

TTL = 1.0
MAX_ENTRIES = 10_000


class ApiKeyCache:
    def __init__(self, *, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, directory.ApiKeyRecord]] = {}
        self._lock = threading.Lock()

    def authenticate(self, rt: Runtime, key: str) -> directory.AppRecord:
        prefix, secret = split_api_key(key)
        # Monotonic, not the runtime clock: this is about freshness, not protocol time.
        now = time.monotonic()
        entry = self._entries.get(prefix)
        if entry is None or now - entry[0] > self.ttl:
            with rt.read() as conn:
                record = directory.lookup_api_key(conn, prefix)
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()  # unknown prefixes must not grow memory without bound
                self._entries[prefix] = (now, record)
        else:
            record = entry[1]
        return directory.check_api_key(record, secret, digests=rt.digests)
