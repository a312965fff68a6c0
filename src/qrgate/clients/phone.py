"""A phone simulator that does what the qrgate phone app does, for tests, demos and benches.

It holds an ES256 device key, receives QR codes as PNG images and decodes them with a real
QR decoder (zxing-cpp), verifies each code's signature offline against the server keys it
learnt at enrolment before talking to anyone, shows (prints) the verified operation, and
approves or denies with signed requests.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.clients.relying_party import raise_for_problem
from qrgate.clients.token import SoftToken
from qrgate.core.confirm import ConfirmCode, read_code
from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    public_key_bytes,
    request_target,
    sign_request,
)
from qrgate.core.enrolment import read_enrol_code
from qrgate.core.keyring import PublicKeySet
from qrgate.core.offline import offline_code
from qrgate.errors import InvalidField, Malformed, UnknownKey
from qrgate.qrimage import decode_image


def offline_secret_of(enrolled: dict[str, Any]) -> bytes | None:
    """The offline secret of an enrolment answer (base64url), if the server sent one."""
    text = enrolled.get("offline_secret")
    return None if text is None else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_png(png: bytes) -> str:
    """The text of the one QR code in an image, as a camera app would read it."""
    found = decode_image(png)
    if not found:
        raise Malformed("no QR code in the image", code="unreadable_image")
    return found[0].text


@dataclass
class PhoneSimulator:
    base_url: str
    name: str = "simulated phone"
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.time
    show: Callable[[str], None] = field(default=lambda line: None)
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    device_id: str | None = None
    server_keys: PublicKeySet | None = None
    # Scheme E: the phone's OCRA software token, once enrolled.
    token: SoftToken | None = None
    # Scheme C offline approval: the secret the enrolment handed over once (32 bytes).
    offline_secret: bytes | None = None

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, transport=self.transport, timeout=10.0)

    def close(self) -> None:
        self._http.close()

    # --- signed requests ---------------------------------------------------------------

    def _signed(self, method: str, path: str, body: Any = None, *, device_id: str | None = None,
                params: dict[str, Any] | None = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        who = device_id or self.device_id
        if who is None:
            raise RuntimeError("phone is not enrolled")
        timestamp = int(self.clock())
        url = httpx.URL(path, params=params)
        signature = sign_request(private_key=self.private_key, method=method,
                                 path=request_target(url.path, url.query.decode()),
                                 timestamp=timestamp, device_id=who, body=raw)
        headers = {DEVICE_HEADER: who, TIMESTAMP_HEADER: str(timestamp),
                   SIGNATURE_HEADER: signature}
        if body is not None:
            headers["content-type"] = "application/json"
        return self._http.request(method, url, content=raw, headers=headers)

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self._signed(method, path, body, **kwargs)
        raise_for_problem(response)
        return response.json()

    # --- enrolment ---------------------------------------------------------------------

    def enrol(self, code: str, *, password: str | None = None,
              confirm_code: str | None = None) -> dict[str, Any]:
        """Bind this phone: the code comes from the enrolment QR."""
        public = base64.urlsafe_b64encode(public_key_bytes(self.private_key.public_key()))
        body: dict[str, Any] = {"code": code, "public_key": public.rstrip(b"=").decode(),
                                "name": self.name}
        if password is not None:
            body["password"] = password
        if confirm_code is not None:
            body["confirm_code"] = confirm_code
        result = dict(self.call("POST", "/v1/devices", body, device_id="new"))
        self.device_id = result["device_id"]
        self.server_keys = PublicKeySet.from_jwks(result["keys"])
        self.offline_secret = offline_secret_of(result)
        # With the server keys known, the enrolment code can be checked offline too.
        read_enrol_code(code, keys=self.server_keys, now=self.clock())
        self.show(f"[{self.name}] bound to {result['login']} as device {self.device_id}")
        return result

    def enrol_with_pass(self, access_pass: str) -> dict[str, Any]:
        """Bind this phone with a temporary access pass (the user lost their phone)."""
        public = base64.urlsafe_b64encode(public_key_bytes(self.private_key.public_key()))
        body = {"access_pass": access_pass, "public_key": public.rstrip(b"=").decode(),
                "name": self.name}
        result = dict(self.call("POST", "/v1/devices", body, device_id="new"))
        self.device_id = result["device_id"]
        self.server_keys = PublicKeySet.from_jwks(result["keys"])
        self.offline_secret = offline_secret_of(result)
        self.show(f"[{self.name}] bound to {result['login']} as device {self.device_id} "
                  "with an access pass")
        return result

    def enrol_from_png(self, png: bytes, **confirmation: str) -> dict[str, Any]:
        return self.enrol(decode_png(png), **confirmation)

    # --- scheme C ------------------------------------------------------------------------

    def read_confirm_code(self, text: str) -> ConfirmCode:
        """606: verify the code offline; a forged code is refused before any request. A
        code signed by a key this phone has not seen yet (the server rotated) makes it
        fetch the server's keys once more; a code no published key signed stays refused."""
        if self.server_keys is None:
            raise RuntimeError("phone knows no server keys yet")
        try:
            return read_code(text, keys=self.server_keys, now=self.clock())
        except UnknownKey:
            return read_code(text, keys=self.refresh_keys(), now=self.clock())

    def refresh_keys(self) -> PublicKeySet:
        """The server's code-signing keys, fetched again (``/v1/keys``)."""
        response = self._http.get("/v1/keys")
        raise_for_problem(response)
        self.server_keys = PublicKeySet.from_jwks(response.json())
        if self.token is not None:
            self.token.server_keys = self.server_keys
        return self.server_keys

    def scan_text(self, text: str, *, verify_offline: bool = True) -> dict[str, Any]:
        if verify_offline:
            code = self.read_confirm_code(text)
            self.show(f"[{self.name}] code verified offline: {code.operation} "
                      f"{code.amount or ''} for {code.login}")
        context = dict(self.call("POST", "/v1/confirm/scan", {"code": text}))
        requester = context["requester"]
        self.show(
            f"[{self.name}] {context['service']['organisation']} / "
            f"{context['service']['application']} asks to confirm "
            f"{context['operation']} {context['scene'].get('amount') or ''} "
            f"from {requester['ip']} ({requester['place']}, {requester['user_agent']})"
        )
        return context

    def scan_png(self, png: bytes) -> dict[str, Any]:
        return self.scan_text(decode_png(png))

    def offline_code(self, text: str, *, number: int | None = None) -> str:
        """No network: verify the code offline, show it, and compute the one-time code the
        user types into the waiting page (``qrgate.core.offline``). ``number``: the number
        the browser shows, when the code asks for number matching."""
        if self.offline_secret is None:
            raise RuntimeError("phone holds no offline secret: enrol it again")
        code = self.read_confirm_code(text)
        if code.number_matching and number is None:
            raise InvalidField("this code needs the number the browser shows",
                               code="number_required")
        self.show(f"[{self.name}] code verified offline: {code.operation} "
                  f"{code.amount or ''} for {code.login}")
        return offline_code(secret=self.offline_secret, challenge_id=code.challenge_id,
                            number=number if code.number_matching else None)

    def decide(self, challenge_id: str, *, approve: bool, number: int | None = None,
               report: bool = False) -> dict[str, Any]:
        """``report``: deny and say "this wasn't me"."""
        body: dict[str, Any] = {"decision": "approve" if approve else "deny"}
        if number is not None:
            body["number"] = number
        if report:
            body["report"] = True
        result = dict(self.call("POST", f"/v1/confirm/challenges/{challenge_id}/decision", body))
        self.show(f"[{self.name}] result: {result['state']}")
        return result

    def history(self, q: str | None = None) -> list[dict[str, Any]]:
        params = {"q": q} if q else None
        return list(self.call("GET", "/v1/devices/me/history", params=params)["items"])

    def unbind(self) -> dict[str, Any]:
        return dict(self.call("DELETE", "/v1/devices/me"))

    # --- scheme E ------------------------------------------------------------------------

    def enrol_token(self, code: str) -> SoftToken:
        """Enrol and activate the software token from its enrolment QR content. The phone
        learns the server's keys from the server it is enrolling with, if it has none."""
        if self.server_keys is None:
            self.refresh_keys()
        assert self.server_keys is not None
        self.token = SoftToken.enrol(code, server_keys=self.server_keys, clock=self.clock,
                                     show=self.show, transport=self.transport)
        return self.token

    def sign_transaction(self, challenge_code: str) -> str:
        """S2: the token's response for the transaction the challenge code shows."""
        if self.token is None:
            raise RuntimeError("phone has no token")
        return self.token.sign(challenge_code)
