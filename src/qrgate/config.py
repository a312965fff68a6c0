"""Server settings, read once from the environment (every variable is listed in README).

Nothing else in qrgate reads ``os.environ`` (the command line's ``QRGATE_DEBUG`` aside): the
app factory takes a ``Settings`` so tests and several nodes in one process can run side by side
with different configurations.

Every value is checked here, and a bad one raises :class:`~qrgate.errors.InvalidField` naming
the variable and what it accepts: a deployment must be fixable from that one line. An empty
variable counts as unset.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from qrgate.errors import InvalidField

# NIST SP 800-63B-4: out-of-band approvals expire within 10 minutes.
MAX_CONFIRM_TTL = 600

# uvicorn's names, quietest first.
LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug", "trace")

# variable: (field, lowest, highest, unit). Bounds keep a typo (a missing digit, seconds
# given as minutes) from starting a server that locks everyone out or never expires anything.
INTEGER_RANGES: Final[dict[str, tuple[str, int, int, str]]] = {
    "QRGATE_PORT": ("port", 1, 65_535, ""),
    "QRGATE_CONFIRM_TTL": ("confirm_ttl", 10, MAX_CONFIRM_TTL, " seconds"),
    "QRGATE_CODE_TTL": ("code_ttl", 5, MAX_CONFIRM_TTL, " seconds"),
    "QRGATE_ENROL_TTL": ("enrol_ttl", 60, 86_400, " seconds"),
    "QRGATE_MAX_BODY_BYTES": ("max_body_bytes", 1_024, 1_048_576, " bytes"),
    "QRGATE_MAX_HEADER_BYTES": ("max_header_bytes", 1_024, 1_048_576, " bytes"),
    "QRGATE_DEVICE_CLOCK_SKEW": ("device_clock_skew", 1, 900, " seconds"),
    "QRGATE_MAX_FAILURES": ("max_failures", 1, 100, ""),
    "QRGATE_USER_MAX_FAILURES": ("user_max_failures", 1, 100, ""),
    "QRGATE_AUDIT_CHECKPOINT_SECONDS": ("audit_checkpoint_seconds", 0, 86_400, " seconds"),
    "QRGATE_KEY_REFRESH_SECONDS": ("key_refresh_seconds", 1, 300, " seconds"),
    "QRGATE_WEBHOOK_RETENTION_DAYS": ("webhook_retention_days", 1, 3_650, " days"),
    "QRGATE_ACCESS_PASS_TTL": ("access_pass_ttl", 300, 604_800, " seconds"),
    "QRGATE_REPORT_BLOCK_SECONDS": ("report_block_seconds", 0, 604_800, " seconds"),
    "QRGATE_MAX_PIN_FAILURES": ("max_pin_failures", 1, 20, ""),
    "QRGATE_GRIDCARD_TTL": ("gridcard_ttl", 30, MAX_CONFIRM_TTL, " seconds"),
    "QRGATE_GRIDCARD_WINDOW_MIN": ("gridcard_window_min", 5, 600, " seconds"),
    "QRGATE_GRIDCARD_WINDOW_MAX": ("gridcard_window_max", 5, 600, " seconds"),
    "QRGATE_GRIDCARD_MAX_REISSUES": ("gridcard_max_reissues", 0, 10, ""),
}

# Seconds between a webhook's failed attempt and the next one: the first retry after 5 s,
# then growing to about a day in all, as Standard Webhooks recommends (each delay is
# stretched by up to a fifth at random, so that retries do not arrive in bursts).
DEFAULT_WEBHOOK_RETRIES: Final = (5.0, 30.0, 120.0, 600.0, 3_600.0, 7_200.0, 14_400.0,
                                  28_800.0, 36_000.0)
MAX_WEBHOOK_RETRIES: Final = 20
MAX_WEBHOOK_RETRY_DELAY: Final = 86_400.0

# The databases qrgate.storage.db runs on: SQLite, and PostgreSQL through psycopg 3.
_DATABASE_URL: Final = re.compile(r"(sqlite(\+[a-z]+)?|postgresql(\+psycopg)?)://", re.ASCII)


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
    max_header_bytes: int = 16_384
    # One structured line per request (logger qrgate.access).
    access_log: bool = True
    device_clock_skew: int = 120
    max_failures: int = 5
    # Consecutive failed proofs (wrong number, wrong one-time password) across a user's
    # challenges before new ones are refused: a new challenge never resets the count.
    user_max_failures: int = 10
    log_level: str = "info"
    # How often each server signs an audit checkpoint when the log grew; 0 turns it off.
    audit_checkpoint_seconds: int = 60
    # How often each node re-reads the signing keys even without a rotation hint (SQLite
    # processes get none from each other); see qrgate.keys.
    key_refresh_seconds: int = 5
    # TLS for ``qrgate serve``: a certificate chain and its key (PEM files), or a
    # self-signed development certificate kept in the data directory (qrgate.dev_tls).
    # Either one makes the default public URL https://.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    dev_tls: bool = False
    # Webhooks (qrgate.webhooks): the delays before each retry (so their count too), who may
    # be a destination besides public addresses, and how long finished deliveries are kept
    # for listing and replay.
    webhook_retries: tuple[float, ...] = DEFAULT_WEBHOOK_RETRIES
    webhook_allow_loopback: bool = False
    webhook_allow_private: bool = False
    webhook_retention_days: int = 30
    # How long a temporary access pass (lost phone) is valid when its issuer names no time.
    access_pass_ttl: int = 3_600
    # After a "this wasn't me" report, how long the user gets no new challenge (0: none).
    report_block_seconds: int = 900
    # Wrong app-lock PINs a phone may send before its PIN is refused for good.
    max_pin_failures: int = 5
    # Scheme A (qrgate.core.gridcard_attempt): how long one authentication with a grid card
    # lives, the bounds of a position's time window, and how many other positions it may ask.
    gridcard_ttl: int = 300
    gridcard_window_min: int = 20
    gridcard_window_max: int = 120
    gridcard_max_reissues: int = 2
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for variable, (name, lowest, highest, unit) in INTEGER_RANGES.items():
            value: int = getattr(self, name)
            if not lowest <= value <= highest:
                raise InvalidField(f"{variable} must be {lowest}..{highest}{unit}, not {value}")
        if self.code_ttl > self.confirm_ttl:
            raise InvalidField(f"QRGATE_CODE_TTL ({self.code_ttl}) must not exceed "
                               f"QRGATE_CONFIRM_TTL ({self.confirm_ttl})")
        if not self.gridcard_window_min <= 60 <= self.gridcard_window_max:
            raise InvalidField("QRGATE_GRIDCARD_WINDOW_MIN must be at most 60 seconds and "
                               "QRGATE_GRIDCARD_WINDOW_MAX at least 60 (the window without "
                               "history)")
        if self.gridcard_window_max > self.gridcard_ttl:
            raise InvalidField(f"QRGATE_GRIDCARD_WINDOW_MAX ({self.gridcard_window_max}) must "
                               f"not exceed QRGATE_GRIDCARD_TTL ({self.gridcard_ttl})")
        if self.log_level not in LOG_LEVELS:
            raise InvalidField(f"QRGATE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                               f"not {self.log_level!r}")
        if not self.host.strip():
            raise InvalidField("QRGATE_HOST must not be empty")
        if not self.public_url.startswith(("http://", "https://")):
            raise InvalidField("QRGATE_PUBLIC_URL must start with http:// or https://, "
                               f"not {self.public_url!r}")
        if not self.issuer.strip():
            raise InvalidField("QRGATE_ISSUER must not be empty")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidField("QRGATE_TLS_CERT (--tls-cert) and QRGATE_TLS_KEY (--tls-key) "
                               "go together: set both or neither")
        if self.dev_tls and self.tls_cert is not None:
            raise InvalidField("QRGATE_DEV_TLS (--dev-tls) makes its own certificate: do not "
                               "combine it with QRGATE_TLS_CERT and QRGATE_TLS_KEY")
        if not 1 <= len(self.webhook_retries) <= MAX_WEBHOOK_RETRIES or not all(
                0 <= delay <= MAX_WEBHOOK_RETRY_DELAY for delay in self.webhook_retries):
            raise InvalidField(f"QRGATE_WEBHOOK_RETRIES must be 1..{MAX_WEBHOOK_RETRIES} "
                               f"delays of 0..{MAX_WEBHOOK_RETRY_DELAY:.0f} seconds")
        # The value itself is left out of the message: it may carry a password.
        if self.database_url is not None and not _DATABASE_URL.match(self.database_url):
            raise InvalidField("QRGATE_DATABASE_URL must be a postgresql+psycopg:// or a "
                               "sqlite:/// URL, e.g. postgresql+psycopg://user@host/db")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qrgate.db').resolve()}"

    @property
    def tls(self) -> bool:
        """Whether ``qrgate serve`` speaks https itself (not behind a TLS proxy)."""
        return self.dev_tls or self.tls_cert is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = dict(os.environ if env is None else env)

        def text(name: str, default: str) -> str:
            return source.get(name, "").strip() or default

        def integer(name: str, default: int) -> int:
            raw = text(name, "")
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                accepted = ""
                if name in INTEGER_RANGES:
                    _, lowest, highest, unit = INTEGER_RANGES[name]
                    accepted = f" {lowest}..{highest}{unit}"
                raise InvalidField(f"{name} must be an integer{accepted}, not {raw!r}") from None

        def switch(name: str, default: bool) -> bool:
            raw = text(name, "on" if default else "off").lower()
            # 1 and 0 too: QRGATE_DEBUG=1 taught people that form.
            if raw not in ("on", "off", "1", "0"):
                raise InvalidField(f"{name} must be on or off, not {raw!r}")
            return raw in ("on", "1")

        def delays(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
            raw = text(name, "")
            if not raw:
                return default
            try:
                parsed = tuple(float(part) for part in raw.split(","))
            except ValueError:
                parsed = ()
            # NaN and infinities parse as floats; neither is a delay.
            if not parsed or not all(math.isfinite(delay) for delay in parsed):
                raise InvalidField(f"{name} must be comma-separated seconds, e.g. 5,30,120, "
                                   f"not {raw!r}")
            return parsed

        def path(name: str) -> Path | None:
            raw = text(name, "")
            return Path(raw) if raw else None

        port = integer("QRGATE_PORT", 8000)
        host = text("QRGATE_HOST", "127.0.0.1")
        tls_cert, tls_key = path("QRGATE_TLS_CERT"), path("QRGATE_TLS_KEY")
        dev_tls = switch("QRGATE_DEV_TLS", False)
        secure = dev_tls or tls_cert is not None
        return cls(
            data_dir=Path(text("QRGATE_DATA_DIR", "qrgate-data")),
            database_url=text("QRGATE_DATABASE_URL", "") or None,
            host=host,
            port=port,
            # Links are built as public_url + "/v1/...": a trailing slash would double.
            public_url=text("QRGATE_PUBLIC_URL",
                            http_url(host, port, secure=secure)).rstrip("/"),
            issuer=text("QRGATE_ISSUER", "qrgate"),
            confirm_ttl=integer("QRGATE_CONFIRM_TTL", 300),
            code_ttl=integer("QRGATE_CODE_TTL", 30),
            enrol_ttl=integer("QRGATE_ENROL_TTL", 600),
            max_body_bytes=integer("QRGATE_MAX_BODY_BYTES", 16_384),
            max_header_bytes=integer("QRGATE_MAX_HEADER_BYTES", 16_384),
            access_log=switch("QRGATE_ACCESS_LOG", True),
            device_clock_skew=integer("QRGATE_DEVICE_CLOCK_SKEW", 120),
            max_failures=integer("QRGATE_MAX_FAILURES", 5),
            user_max_failures=integer("QRGATE_USER_MAX_FAILURES", 10),
            log_level=text("QRGATE_LOG_LEVEL", "info").lower(),
            audit_checkpoint_seconds=integer("QRGATE_AUDIT_CHECKPOINT_SECONDS", 60),
            key_refresh_seconds=integer("QRGATE_KEY_REFRESH_SECONDS", 5),
            tls_cert=tls_cert,
            tls_key=tls_key,
            dev_tls=dev_tls,
            webhook_retries=delays("QRGATE_WEBHOOK_RETRIES", DEFAULT_WEBHOOK_RETRIES),
            webhook_allow_loopback=switch("QRGATE_WEBHOOK_ALLOW_LOOPBACK", False),
            webhook_allow_private=switch("QRGATE_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_retention_days=integer("QRGATE_WEBHOOK_RETENTION_DAYS", 30),
            access_pass_ttl=integer("QRGATE_ACCESS_PASS_TTL", 3_600),
            report_block_seconds=integer("QRGATE_REPORT_BLOCK_SECONDS", 900),
            max_pin_failures=integer("QRGATE_MAX_PIN_FAILURES", 5),
            gridcard_ttl=integer("QRGATE_GRIDCARD_TTL", 300),
            gridcard_window_min=integer("QRGATE_GRIDCARD_WINDOW_MIN", 20),
            gridcard_window_max=integer("QRGATE_GRIDCARD_WINDOW_MAX", 120),
            gridcard_max_reissues=integer("QRGATE_GRIDCARD_MAX_REISSUES", 2),
            env=source,
        )


def http_url(host: str, port: int, *, secure: bool = False) -> str:
    """``http://host:port`` (``https://`` when ``secure``), with an IPv6 address in brackets
    as URLs need it."""
    scheme = "https" if secure else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
