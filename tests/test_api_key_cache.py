"""API-key lookups are remembered for a second at most; the secret is checked every time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qrgate.accounts import directory
from qrgate.accounts.api_key_cache import ApiKeyCache
from qrgate.accounts.provision import provision
from qrgate.config import Settings
from qrgate.errors import Unauthenticated
from qrgate.runtime import build_runtime


def test_revocation_takes_effect_within_the_ttl(tmp_path: Path) -> None:
    rt = build_runtime(Settings(data_dir=tmp_path / "data"))
    try:
        org = provision(rt, org_slug="o", org_name="O", business_id="b", app_name="B")
        cache = ApiKeyCache(ttl=0.2)
        assert cache.authenticate(rt, org.api_key).id == org.app_id
        wrong = org.api_key[:-2] + ("AA" if not org.api_key.endswith("AA") else "BB")
        with pytest.raises(Unauthenticated):
            cache.authenticate(rt, wrong)  # cached lookup, but the secret still fails
        prefix = org.api_key.split("_")[1]
        with rt.engine.begin() as conn:
            directory.revoke_api_key(conn, prefix=prefix, now=time.time())
        time.sleep(0.25)
        with pytest.raises(Unauthenticated) as refused:
            cache.authenticate(rt, org.api_key)
        assert refused.value.code == "bad_api_key"
        with pytest.raises(Unauthenticated):
            cache.authenticate(rt, "qgk_unknown_secret")
    finally:
        rt.close()
