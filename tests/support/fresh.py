"""Newcomers on a running stack: users nobody else uses, their phones and one-time
passwords. Tests that share a deployment (``support.deployment``) start from these, so no
test meets another's lockouts, freezes, tokens or devices, whatever order they run in.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from qrgate.clients.phone import PhoneSimulator
from qrgate.core.device_auth import public_key_bytes
from support.stack import Stack

_numbers = itertools.count()


def login(prefix: str = "user") -> str:
    # Random as well as counted: xdist workers may share a database's namespace of logins.
    return f"{prefix}{next(_numbers)}-{secrets.token_hex(3)}"


def user(stack: Stack, *, prefix: str = "user", password: str | None = None) -> str:
    name = login(prefix)
    stack.rp.create_user(name, password=password)
    return name


def enrolment_request(phone: PhoneSimulator, code: str, **confirmation: str) -> httpx.Response:
    """The request ``phone.enrol`` sends, answered as it is: signed with the new device key
    (``Qrgate-Device: new``), confirmed by ``password`` or ``confirm_code``."""
    public_key = base64.urlsafe_b64encode(public_key_bytes(phone.private_key.public_key()))
    body: dict[str, Any] = {"code": code, "public_key": public_key.rstrip(b"=").decode(),
                            "name": phone.name, **confirmation}
    return phone._signed("POST", "/v1/devices", body, device_id="new")


def bound_phone(stack: Stack, login: str, name: str = "phone") -> PhoneSimulator:
    """A phone bound to ``login`` with the enrolment's confirmation code (no password: no
    scrypt)."""
    new = stack.phone(name)
    enrolment = stack.rp.start_enrolment(login)
    new.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
    return new


def user_with_phone(stack: Stack, *, prefix: str = "user") -> tuple[str, PhoneSimulator]:
    name = user(stack, prefix=prefix)
    return name, bound_phone(stack, name)


def totp(stack: Stack, login: str) -> pyotp.TOTP:
    """Set up the user's TOTP verifier; the authenticator app the user scanned it into."""
    uri = stack.rp.setup_totp(login)["uri"]
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
