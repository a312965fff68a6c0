"""Who calls each qrgate operation, and with which credential, for the schemathesis gate.

qrgate has five kinds of caller, and the fuzzer cannot make their credentials on its own (it
generates no security parameters: see ``support.fuzz_gate``):

- the relying party: ``Authorization: Bearer qgk_<prefix>_<secret>``;
- a bound device: ``Qrgate-Device``, ``Qrgate-Timestamp`` and ``Qrgate-Signature``, an ES256
  signature over the method, the path, the time, the device id and the SHA-256 of the exact
  body bytes (``qrgate.core.device_auth``); a phone that binds itself signs its enrolment
  with its new key as device ``new``;
- the browser that started a challenge: ``Qrgate-Browser-Token``;
- whoever started a grid card attempt (scheme A) or joined it by scanning its code: the
  attempt's answer token, ``Qrgate-Attempt-Token``;
- anyone (health, keys, chain verification, link texts, token activation, which the OCRA
  response itself proves).

Every credential is a ``requests`` auth object, applied when the request is prepared, so a
device signature covers the body bytes exactly as they go on the wire. Each authenticated
operation is sent with a valid credential and again with it missing and wrong.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final
from urllib.parse import unquote, urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from requests.auth import AuthBase

from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    public_key_bytes,
    request_target,
    sign_request,
)
from qrgate.http.auth import BROWSER_HEADER
from qrgate.http.routes_gridcard import ATTEMPT_HEADER


class Caller(StrEnum):
    PUBLIC = "public"
    RELYING_PARTY = "relying party"
    # GET on a challenge: its relying party or the browser that started it.
    RP_OR_BROWSER = "relying party or starting browser"
    BROWSER = "starting browser"
    # A grid card attempt: its relying party, or whoever holds its answer token (the app
    # that started it alone, or joined it by scanning the relying party's code).
    RP_OR_ATTEMPT = "relying party or attempt token holder"
    DEVICE = "bound device"
    # POST /v1/devices: signed by the key being bound (``Qrgate-Device: new``).
    NEW_DEVICE = "new device"


# Keyed by schemathesis's operation label. The gate fails on an operation missing here, so a
# new route cannot slip through unfuzzed or fuzzed as the wrong caller. Image routes are
# listed both as one templated route and as one route per kind and format (the API is
# moving from the first to the second).
CALLERS: Final[Mapping[str, Caller]] = {
    "GET /healthz": Caller.PUBLIC,
    "GET /readyz": Caller.PUBLIC,
    "GET /v1/keys": Caller.PUBLIC,
    "POST /v1/confirm/challenges": Caller.RELYING_PARTY,
    "GET /v1/confirm/challenges": Caller.RELYING_PARTY,
    "GET /v1/confirm/challenges/{challenge_id}": Caller.RP_OR_BROWSER,
    "POST /v1/confirm/challenges/{challenge_id}/browser-session": Caller.BROWSER,
    "POST /v1/confirm/challenges/{challenge_id}/rotate": Caller.BROWSER,
    "GET /v1/confirm/challenges/{challenge_id}/qr.png": Caller.RP_OR_BROWSER,
    "GET /v1/confirm/challenges/{challenge_id}/qr.svg": Caller.RP_OR_BROWSER,
    "GET /v1/confirm/challenges/{challenge_id}/events": Caller.RP_OR_BROWSER,
    "POST /v1/confirm/challenges/{challenge_id}/cancel": Caller.RELYING_PARTY,
    "POST /v1/confirm/challenges/{challenge_id}/otp": Caller.RELYING_PARTY,
    "POST /v1/confirm/challenges/{challenge_id}/offline-code": Caller.RP_OR_BROWSER,
    "POST /v1/confirm/scan": Caller.DEVICE,
    "POST /v1/confirm/challenges/{challenge_id}/decision": Caller.DEVICE,
    "POST /v1/devices": Caller.NEW_DEVICE,
    "GET /v1/devices/me": Caller.DEVICE,
    "DELETE /v1/devices/me": Caller.DEVICE,
    "GET /v1/devices/me/history": Caller.DEVICE,
    "GET /v1/devices/me/lock": Caller.DEVICE,
    "PUT /v1/devices/me/lock/pin": Caller.DEVICE,
    "POST /v1/devices/me/lock/off": Caller.DEVICE,
    "POST /v1/devices/me/lock/webauthn/options": Caller.DEVICE,
    "POST /v1/devices/me/lock/webauthn": Caller.DEVICE,
    "POST /v1/users": Caller.RELYING_PARTY,
    "GET /v1/users/{login}": Caller.RELYING_PARTY,
    "PUT /v1/users/{login}/preferences": Caller.RELYING_PARTY,
    "POST /v1/users/{login}/enrolments": Caller.RELYING_PARTY,
    "POST /v1/users/{login}/access-passes": Caller.RELYING_PARTY,
    "POST /v1/users/{login}/reports": Caller.RELYING_PARTY,
    "DELETE /v1/users/{login}/block": Caller.RELYING_PARTY,
    "POST /v1/users/{login}/totp": Caller.RELYING_PARTY,
    "GET /v1/users/{login}/devices": Caller.RELYING_PARTY,
    "DELETE /v1/users/{login}/devices/{device_id}": Caller.RELYING_PARTY,
    "POST /v1/txsign/tokens": Caller.RELYING_PARTY,
    "POST /v1/txsign/tokens/{token_id}/activate": Caller.PUBLIC,
    "POST /v1/txsign/tokens/{token_id}/resync": Caller.RELYING_PARTY,
    "POST /v1/txsign/transactions": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}": Caller.RELYING_PARTY,
    "POST /v1/txsign/transactions/{transaction_id}/response": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}/challenge.png": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}/challenge.svg": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}/chain.png": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}/chain.svg": Caller.RELYING_PARTY,
    "GET /v1/txsign/transactions/{transaction_id}/text": Caller.PUBLIC,
    "POST /v1/txsign/verify": Caller.PUBLIC,
    "PUT /v1/webhook": Caller.RELYING_PARTY,
    "GET /v1/webhook": Caller.RELYING_PARTY,
    "DELETE /v1/webhook": Caller.RELYING_PARTY,
    "POST /v1/webhook/rotate-secret": Caller.RELYING_PARTY,
    "GET /v1/webhook/deliveries": Caller.RELYING_PARTY,
    "POST /v1/webhook/deliveries/{event_id}/replay": Caller.RELYING_PARTY,
    # Scheme A: the app signs in alone with the password (public), or joins a relying
    # party's attempt by its signed code (public: the code is the credential).
    "POST /v1/gridcard/sign-in": Caller.PUBLIC,
    "POST /v1/gridcard/attempts": Caller.RELYING_PARTY,
    "POST /v1/gridcard/scan": Caller.PUBLIC,
    "GET /v1/gridcard/attempts/{attempt_id}": Caller.RP_OR_ATTEMPT,
    "POST /v1/gridcard/attempts/{attempt_id}/answer": Caller.RP_OR_ATTEMPT,
    "POST /v1/gridcard/attempts/{attempt_id}/reissue": Caller.RP_OR_ATTEMPT,
    "POST /v1/gridcard/attempts/{attempt_id}/cancel": Caller.RP_OR_ATTEMPT,
    "GET /v1/gridcard/attempts/{attempt_id}/events": Caller.RP_OR_ATTEMPT,
    "GET /v1/gridcard/attempts/{attempt_id}/qr.png": Caller.RELYING_PARTY,
    "GET /v1/gridcard/attempts/{attempt_id}/qr.svg": Caller.RELYING_PARTY,
    "POST /v1/gridcard/cards": Caller.RELYING_PARTY,
    "GET /v1/gridcard/cards": Caller.RELYING_PARTY,
    "POST /v1/gridcard/cards/{serial}/revoke": Caller.RELYING_PARTY,
}

# The operations whose answer carries an attempt's id and answer token.
ATTEMPT_STARTS: Final = frozenset({"POST /v1/gridcard/sign-in", "POST /v1/gridcard/attempts",
                                   "POST /v1/gridcard/scan"})


UNBIND_SELF: Final = "DELETE /v1/devices/me"


def signed_target(url: str) -> str:
    """The part of the request URL that a device signature covers: the percent-decoded path
    and, when there is one, ``?`` and the raw query string as sent
    (``qrgate.core.device_auth.request_target``)."""
    parts = urlsplit(url)
    return request_target(unquote(parts.path), parts.query)


def _body_bytes(request: requests.PreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes):
        return body
    raise TypeError(f"cannot sign a streamed body ({type(body).__name__})")


class DeviceSignature(AuthBase):
    """Signs the prepared request as ``qrgate.clients.phone`` does, over the exact bytes sent."""

    def __init__(self, *, device_id: str, key: Callable[[requests.PreparedRequest],
                                                         ec.EllipticCurvePrivateKey],
                 clock: Callable[[], float]) -> None:
        self.device_id = device_id
        self.key = key
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        timestamp = int(self.clock())
        assert request.method is not None and request.url is not None
        signature = sign_request(
            private_key=self.key(request), method=request.method,
            path=signed_target(request.url), timestamp=timestamp, device_id=self.device_id,
            body=_body_bytes(request),
        )
        request.headers[DEVICE_HEADER] = self.device_id
        request.headers[TIMESTAMP_HEADER] = str(timestamp)
        request.headers[SIGNATURE_HEADER] = signature
        return request


class Header(AuthBase):
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.name] = self.value
        return request


def encoded_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """As the phone sends it in ``POST /v1/devices``: base64url, unpadded, uncompressed point."""
    raw = public_key_bytes(key.public_key())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Attempt:
    """One way of sending a request: the credential, and what the gate calls it."""

    label: str
    auth: AuthBase | None


@dataclass
class Credentials:
    """The credentials of the world the gate fuzzes, and which one each request gets."""

    api_key: str
    device_id: str
    device_key: ec.EllipticCurvePrivateKey
    # A second bound device, the one that unbinds itself: were it the main one, the first
    # successful ``DELETE /v1/devices/me`` would leave every later device request a 401.
    spare_device_id: str
    spare_device_key: ec.EllipticCurvePrivateKey
    clock: Callable[[], float]
    # challenge id -> browser token, for the challenges the harness knows (seeded, or
    # started by the fuzzer itself: see ``remember_challenge``).
    browser_tokens: dict[str, str] = field(default_factory=dict)
    # grid card attempt id -> answer token, likewise (seeded, or learnt from the answers of
    # ``ATTEMPT_STARTS``: see ``remember_attempt``).
    attempt_tokens: dict[str, str] = field(default_factory=dict)
    # Fresh device keys offered to ``POST /v1/devices`` through the ``body.public_key``
    # dictionary, so the enrolment signature can be made with the key the body names.
    new_device_keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    _turns: itertools.count[int] = field(default_factory=itertools.count)

    def caller_of(self, label: str) -> Caller:
        try:
            return CALLERS[label]
        except KeyError:
            raise AssertionError(
                f"{label} is in /openapi.json but not in tests/support/fuzz_callers.CALLERS: "
                "say who calls it so the fuzz gate sends the right credential") from None

    def remember_challenge(self, body: object) -> None:
        """Learn the browser token of a challenge the fuzzer started itself."""
        if isinstance(body, dict):
            challenge_id, token = body.get("challenge_id"), body.get("browser_token")
            if isinstance(challenge_id, str) and isinstance(token, str):
                self.browser_tokens[challenge_id] = token

    def remember_attempt(self, body: object) -> None:
        """Learn the answer token of a grid card attempt the fuzzer started or joined."""
        if isinstance(body, dict):
            attempt_id, token = body.get("attempt_id"), body.get("answer_token")
            if isinstance(attempt_id, str) and isinstance(token, str):
                self.attempt_tokens[attempt_id] = token

    # --- the valid credential ------------------------------------------------------------

    def valid(self, label: str, path_parameters: Mapping[str, object]) -> Attempt:
        caller = self.caller_of(label)
        if caller is Caller.PUBLIC:
            return Attempt("no credential needed", None)
        if caller is Caller.RELYING_PARTY:
            return Attempt("API key", self._api_key(self.api_key))
        if caller is Caller.DEVICE and label == UNBIND_SELF:
            return Attempt("spare device's signature",
                           DeviceSignature(device_id=self.spare_device_id,
                                           key=lambda _: self.spare_device_key, clock=self.clock))
        if caller is Caller.DEVICE:
            return Attempt("device signature", self._device(lambda _: self.device_key))
        if caller is Caller.NEW_DEVICE:
            return Attempt("new-device signature", self._new_device(self._key_named_in_body))
        if caller is Caller.RP_OR_ATTEMPT:
            # Both callers of an attempt take turns, so each reaches the handler.
            if next(self._turns) % 2:
                return Attempt("API key", self._api_key(self.api_key))
            return Attempt("attempt token",
                           Header(ATTEMPT_HEADER, self._attempt_token(path_parameters)))
        token = self._browser_token(path_parameters)
        # Both callers of a challenge's GETs take turns, so each reaches the handler.
        if caller is Caller.RP_OR_BROWSER and next(self._turns) % 2:
            return Attempt("API key", self._api_key(self.api_key))
        return Attempt("browser token", Header(BROWSER_HEADER, token))

    # --- the refusals --------------------------------------------------------------------

    def refused(self, label: str) -> list[Attempt]:
        """The same request without its credential and with a wrong one. Each must be
        refused with 401 or 403 (see the gate)."""
        caller = self.caller_of(label)
        missing = Attempt("credential missing", None)
        prefix = self.api_key.split("_")[1]
        wrong_secret = Attempt("API key with a wrong secret",
                               self._api_key(f"qgk_{prefix}_{secrets.token_urlsafe(32)}"))
        unknown_key = Attempt("unknown API key", self._api_key(
            f"qgk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"))
        if caller is Caller.PUBLIC:
            return []
        if caller is Caller.RELYING_PARTY:
            return [missing, wrong_secret, unknown_key]
        stranger = ec.generate_private_key(ec.SECP256R1())
        if caller is Caller.DEVICE:
            return [missing, Attempt("device id signed by another key",
                                     self._device(lambda _: stranger))]
        if caller is Caller.NEW_DEVICE:
            return [missing, Attempt("enrolment signed by a key other than the body's",
                                     self._new_device(lambda _: stranger))]
        if caller is Caller.RP_OR_ATTEMPT:
            return [missing, Attempt("wrong attempt token",
                                     Header(ATTEMPT_HEADER, secrets.token_urlsafe(32))),
                    wrong_secret]
        wrong_token = Attempt("wrong browser token",
                              Header(BROWSER_HEADER, secrets.token_urlsafe(32)))
        if caller is Caller.RP_OR_BROWSER:
            return [missing, wrong_token, wrong_secret]
        return [missing, wrong_token]

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _api_key(key: str) -> AuthBase:
        return Header("Authorization", f"Bearer {key}")

    def _device(self, key: Callable[[requests.PreparedRequest], ec.EllipticCurvePrivateKey]
                ) -> AuthBase:
        return DeviceSignature(device_id=self.device_id, key=key, clock=self.clock)

    def _new_device(self, key: Callable[[requests.PreparedRequest],
                                        ec.EllipticCurvePrivateKey]) -> AuthBase:
        return DeviceSignature(device_id="new", key=key, clock=self.clock)

    def _key_named_in_body(self, request: requests.PreparedRequest) -> ec.EllipticCurvePrivateKey:
        """The private half of the body's ``public_key`` when the harness made it; otherwise
        (a key the fuzzer invented) any key: the signature cannot verify, as for a forger."""
        try:
            named = json.loads(_body_bytes(request)).get("public_key")
        except (ValueError, AttributeError):
            named = None
        known = self.new_device_keys.get(named) if isinstance(named, str) else None
        return known or ec.generate_private_key(ec.SECP256R1())

    def _browser_token(self, path_parameters: Mapping[str, object]) -> str:
        challenge_id = path_parameters.get("challenge_id")
        if isinstance(challenge_id, str) and challenge_id in self.browser_tokens:
            return self.browser_tokens[challenge_id]
        # An id the harness does not know: send some real token, as a confused browser would.
        return next(iter(self.browser_tokens.values()), "no-token")

    def _attempt_token(self, path_parameters: Mapping[str, object]) -> str:
        attempt_id = path_parameters.get("attempt_id")
        if isinstance(attempt_id, str) and attempt_id in self.attempt_tokens:
            return self.attempt_tokens[attempt_id]
        # An id the harness does not know: send some real token, as a confused app would.
        return next(iter(self.attempt_tokens.values()), "no-token")
