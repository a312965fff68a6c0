"""Identifiers and bearer secrets: how they are made and shown once. Their stored form is
a keyed digest (``qrgate.core.digests``)."""

from __future__ import annotations

import base64
import secrets

from qrgate.errors import Unauthenticated

API_KEY_PREFIX = "qgk"


def new_id() -> str:
    """128-bit random id, hex (challenges, enrolments, devices)."""
    return secrets.token_hex(16)


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def new_api_key() -> tuple[str, str, str]:
    """Returns (full key shown once, lookup prefix, secret half)."""
    prefix = secrets.token_hex(6)
    secret = new_secret()
    return f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, secret


def split_api_key(key: str) -> tuple[str, str]:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        raise Unauthenticated("API key is malformed", code="bad_api_key")
    return parts[1], parts[2]


def new_numeric_code(digits: int = 8) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))
