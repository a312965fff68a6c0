"""Standard Webhooks (https://www.standardwebhooks.com), symmetric scheme: the body, the
signing key and the ``webhook-*`` headers. Pure: no I/O; time and randomness are arguments.

1. The body is ``{"data": ..., "timestamp": ..., "type": ...}`` as minified JSON with sorted
   keys, ASCII only, made from what the outbox stored, so every attempt sends the same bytes.
   ``timestamp`` is when the event happened (ISO 8601, UTC), not when it is sent.
2. ``webhook-id`` is the event id (32 hex digits: no ``.``, which the signed text uses as
   its separator), the same on every attempt: receivers deduplicate on it.
3. ``webhook-timestamp`` is the attempt's time, integer Unix seconds.
4. ``webhook-signature`` is ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"));
   during a key rotation one such signature per key, space separated.

The key is random bytes shown to the relying party once as ``whsec_`` + base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from qrgate.errors import InvalidField

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the prefix every such key shows)
# The standard asks for 24 bytes at least; 32 is HMAC-SHA256's own block-sized key.
SECRET_BYTES: Final = 32
SIGNATURE_VERSION: Final = "v1"
CONTENT_TYPE: Final = "application/json"


def secret_text(key: bytes) -> str:
    """How the relying party gets the key (once): ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def new_key(random: bytes) -> bytes:
    if len(random) < SECRET_BYTES:
        raise InvalidField("a webhook key needs 32 random bytes", code="bad_key_material")
    return random[:SECRET_BYTES]


def body(*, event_type: str, occurred_at: float, data: Mapping[str, object]) -> bytes:
    payload = {"type": event_type, "timestamp": iso_time(occurred_at), "data": dict(data)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode("ascii")


def iso_time(at: float) -> str:
    """``2026-12-07T10:15:30.123Z``: milliseconds, UTC."""
    text = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def signature(key: bytes, *, msg_id: str, timestamp: int, payload: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode("ascii") + payload
    mac = hmac.digest(key, signed, hashlib.sha256)
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode('ascii')}"


def headers(keys: Sequence[bytes], *, msg_id: str, timestamp: int,
            payload: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with each of ``keys``."""
    if not keys:
        raise ValueError("a webhook is signed with at least one key")
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, msg_id=msg_id, timestamp=timestamp,
                                                payload=payload) for key in keys),
    }
