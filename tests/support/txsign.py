"""Scheme E helpers over the running stack: tokens enrolled from real PNGs, the platform
calling the API, images fetched and decoded as a camera would."""

from __future__ import annotations

from typing import Any

import httpx

from qrgate.clients.phone import decode_png
from qrgate.clients.relying_party import raise_for_problem
from qrgate.clients.token import SoftToken
from qrgate.core.keyring import PublicKeySet
from qrgate.qrimage import render_png
from support.stack import Stack


class Platform:
    """The transaction platform (a relying party) driving ``/v1/txsign``."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.base_url,
                                 headers={"Authorization": f"Bearer {stack.api_key}"})
        stack.closers.append(self.http.close)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        raise_for_problem(response)
        return response.json()

    def image(self, transaction_id: str, kind: str) -> bytes:
        response = self.http.get(f"/v1/txsign/transactions/{transaction_id}/{kind}.png")
        raise_for_problem(response)
        return response.content

    def start(self, account: str, *, demand: str = "transfer 100.00 EUR to ACME",
              comment: str = "invoice 2026-117", parent_code: str | None = None) -> Any:
        body: dict[str, Any] = {"account": account, "demand": demand, "comment": comment}
        if parent_code is not None:
            body["parent_code"] = parent_code
        return self.call("POST", "/v1/txsign/transactions", json=body)

    def respond(self, transaction_id: str, response: str, **extra: Any) -> Any:
        return self.call("POST", f"/v1/txsign/transactions/{transaction_id}/response",
                         json={"response": response, **extra})


def server_keys(stack: Stack) -> PublicKeySet:
    return PublicKeySet.from_jwks(httpx.get(f"{stack.base_url}/v1/keys").json())


def enrolled_token(stack: Stack, platform: Platform, login: str, **body: Any) -> SoftToken:
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": login, **body})
    png = render_png(enrolment["code"])  # the enrolment QR on the user's screen
    return SoftToken.enrol(decode_png(png), server_keys=server_keys(stack), clock=stack.clock)
