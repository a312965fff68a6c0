"""Server settings, read once from the environment (every variable is listed in README).

Nothing else in qrgate reads ``os.environ``: the app factory takes a ``Settings`` so tests and
several nodes in one process can run side by side with different configurations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from qrgate.errors import InvalidField

# NIST SP 800-63B-4: out-of-band approvals expire within 10 minutes.
MAX_CONFIRM_TTL = 600


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path = Path("qrgate-data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    # The QR server's id, carried in every code (the patent's "QR id").
    issuer: str = "qrgate"
    confirm_ttl: int = 300
    code_ttl: int = 30
    enrol_ttl: int = 600
    max_body_bytes: int = 16_384
    device_clock_skew: int = 120
    max_failures: int = 5
    # Consecutive failed proofs (wrong number, wrong one-time password) across a user's
    # challenges before new ones are refused: a new challenge never resets the count.
    user_max_failures: int = 10
    log_level: str = "info"
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 10 <= self.confirm_ttl <= MAX_CONFIRM_TTL:
            raise InvalidField(f"QRGATE_CONFIRM_TTL must be 10..{MAX_CONFIRM_TTL} seconds")
        if not 5 <= self.code_ttl <= self.confirm_ttl:
            raise InvalidField("QRGATE_CODE_TTL must be 5 seconds up to QRGATE_CONFIRM_TTL")
        if not 1 <= self.max_failures <= 100:
            raise InvalidField("QRGATE_MAX_FAILURES must be 1..100")
        if not 1 <= self.user_max_failures <= 100:
            raise InvalidField("QRGATE_USER_MAX_FAILURES must be 1..100")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qrgate.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = dict(os.environ if env is None else env)

        def integer(name: str, default: int) -> int:
            raw = source.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise InvalidField(f"{name} must be an integer") from None

        port = integer("QRGATE_PORT", 8000)
        host = source.get("QRGATE_HOST", "127.0.0.1")
        return cls(
            data_dir=Path(source.get("QRGATE_DATA_DIR", "qrgate-data")),
            database_url=source.get("QRGATE_DATABASE_URL") or None,
            host=host,
            port=port,
            public_url=source.get("QRGATE_PUBLIC_URL", f"http://{host}:{port}"),
            issuer=source.get("QRGATE_ISSUER", "qrgate"),
            confirm_ttl=integer("QRGATE_CONFIRM_TTL", 300),
            code_ttl=integer("QRGATE_CODE_TTL", 30),
            enrol_ttl=integer("QRGATE_ENROL_TTL", 600),
            max_body_bytes=integer("QRGATE_MAX_BODY_BYTES", 16_384),
            device_clock_skew=integer("QRGATE_DEVICE_CLOCK_SKEW", 120),
            max_failures=integer("QRGATE_MAX_FAILURES", 5),
            user_max_failures=integer("QRGATE_USER_MAX_FAILURES", 10),
            log_level=source.get("QRGATE_LOG_LEVEL", "info"),
            env=source,
        )
