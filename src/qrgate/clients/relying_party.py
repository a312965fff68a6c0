"""``QrgateClient``: what a relying party's backend uses to talk to qrgate.

Thin on purpose: one method per endpoint, JSON in and out, and every problem document
raised as :class:`ApiError` carrying its stable ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import httpx

# Scheme A: an attempt in one of these states changes no more (its event stream ends).
GRIDCARD_TERMINAL: Final = frozenset({"authenticated", "failed", "expired"})


class ApiError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code", "http_error"))
        super().__init__(f"{status} {self.code}: {problem.get('detail', '')}")


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"code": "http_error", "detail": response.text[:200]}
        raise ApiError(response.status_code, body if isinstance(body, dict) else {})


def state_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The data of each ``state`` event of a Server-Sent Events stream, read line by line;
    comments (heartbeats) and other events are skipped."""
    event, data = "", ""
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "":
            if event == "state" and data:
                yield dict(json.loads(data))
            event, data = "", ""


class QrgateClient:
    def __init__(self, base_url: str, *, api_key: str,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QrgateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        raise_for_problem(response)
        return response.json()

    def create_user(self, login: str, *, password: str | None = None,
                    display_name: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"login": login, "display_name": display_name}
        if password is not None:
            body["password"] = password
        return dict(self._call("POST", "/v1/users", json=body))

    def start_enrolment(self, login: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/users/{login}/enrolments"))

    def issue_access_pass(self, login: str, *, ttl_seconds: int | None = None,
                          revoke_devices: bool = True) -> dict[str, Any]:
        """A lost phone: a temporary access pass for ``login`` (shown once)."""
        return dict(self._call("POST", f"/v1/users/{login}/access-passes",
                               json={"ttl_seconds": ttl_seconds,
                                     "revoke_devices": revoke_devices}))

    def setup_totp(self, login: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/users/{login}/totp"))

    def set_preferred_verifier(self, login: str, verifier: str | None) -> dict[str, Any]:
        return dict(self._call("PUT", f"/v1/users/{login}/preferences",
                               json={"preferred_verifier": verifier}))

    def list_devices(self, login: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/v1/users/{login}/devices"))

    def unbind_device(self, login: str, device_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/v1/users/{login}/devices/{device_id}"))

    def get_user(self, login: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/users/{login}"))

    def report(self, login: str, *, challenge_id: str | None = None,
               transaction_id: str | None = None) -> dict[str, Any]:
        """Pass on the user's "this wasn't me"."""
        body = {k: v for k, v in (("challenge_id", challenge_id),
                                  ("transaction_id", transaction_id)) if v is not None}
        return dict(self._call("POST", f"/v1/users/{login}/reports", json=body))

    def lift_block(self, login: str) -> dict[str, Any]:
        """End the pause a report put on the user's new challenges."""
        return dict(self._call("DELETE", f"/v1/users/{login}/block"))

    def start_confirm(self, login: str, *, operation: str, amount: str | None = None,
                      currency: str | None = None, source: str = "", content: str = "",
                      requester_ip: str = "", requester_ua: str = "", **extra: Any
                      ) -> dict[str, Any]:
        scene: dict[str, Any] = {"operation": operation, "source": source, "content": content}
        if amount is not None:
            scene["amount"] = amount
        if currency is not None:
            scene["currency"] = currency
        body = {"login": login, "scene": scene,
                "requester": {"ip": requester_ip, "user_agent": requester_ua}, **extra}
        return dict(self._call("POST", "/v1/confirm/challenges", json=body))

    def get_challenge(self, challenge_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/confirm/challenges/{challenge_id}"))

    def cancel(self, challenge_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/confirm/challenges/{challenge_id}/cancel"))

    def submit_otp(self, challenge_id: str, otp: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/confirm/challenges/{challenge_id}/otp",
                               json={"otp": otp}))

    def forward_offline_code(self, challenge_id: str, code: str) -> dict[str, Any]:
        """The 8-digit code a phone without network showed, typed on the relying party's
        own page."""
        return dict(self._call("POST", f"/v1/confirm/challenges/{challenge_id}/offline-code",
                               json={"code": code}))

    def history(self, **params: Any) -> list[dict[str, Any]]:
        clean = {k: v for k, v in params.items() if v is not None}
        return list(self._call("GET", "/v1/confirm/challenges", params=clean)["items"])

    # --- scheme E: transaction signing ---------------------------------------------------

    def enrol_token(self, login: str, *, suite: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"login": login}
        if suite is not None:
            body["suite"] = suite
        return dict(self._call("POST", "/v1/txsign/tokens", json=body))

    def start_transaction(self, account: str, *, demand: str, comment: str = "",
                          platform: str | None = None,
                          parent_code: str | None = None) -> dict[str, Any]:
        """``platform``: the business id of the platform (default: this key's application)."""
        body: dict[str, Any] = {"account": account, "demand": demand, "comment": comment}
        if platform is not None:
            body["platform"] = platform
        if parent_code is not None:
            body["parent_code"] = parent_code
        return dict(self._call("POST", "/v1/txsign/transactions", json=body))

    def submit_response(self, transaction_id: str, response: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/txsign/transactions/{transaction_id}/response",
                               json={"response": response}))

    def transaction_png(self, transaction_id: str, kind: str) -> bytes:
        """``kind``: ``challenge`` (for the token) or ``chain`` (the signed result)."""
        response = self._http.get(f"/v1/txsign/transactions/{transaction_id}/{kind}.png")
        raise_for_problem(response)
        return response.content

    def verify_chain(self, code: str) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/txsign/verify", json={"code": code}))

    # --- scheme A: grid card -------------------------------------------------------------

    def start_gridcard(self, login: str, password: str, *, operation: str | None = None,
                       risk: str | None = None, requester_ip: str = "",
                       requester_ua: str = "") -> dict[str, Any]:
        """The user typed their password on this relying party's page: the answer holds the
        position to show beside the ``code`` the phone scans to join."""
        body: dict[str, Any] = {"login": login, "password": password,
                                "requester": {"ip": requester_ip, "user_agent": requester_ua}}
        if operation is not None:
            body["operation"] = operation
        if risk is not None:
            body["risk"] = risk
        return dict(self._call("POST", "/v1/gridcard/attempts", json=body))

    def get_gridcard(self, attempt_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/gridcard/attempts/{attempt_id}"))

    def gridcard_events(self, attempt_id: str) -> Iterator[dict[str, Any]]:
        """The attempt's ``state`` events (SSE) until a terminal state."""
        # The stream is quiet between changes: wait longer for it than for an answer.
        with self._http.stream("GET", f"/v1/gridcard/attempts/{attempt_id}/events",
                               timeout=httpx.Timeout(10.0, read=30.0)) as response:
            if response.status_code >= 400:
                response.read()  # a refusal is a problem document, not a stream
            raise_for_problem(response)
            for event in state_events(response.iter_lines()):
                yield event
                if event["state"] in GRIDCARD_TERMINAL:
                    return

    # --- webhooks --------------------------------------------------------------------------

    def set_webhook(self, url: str) -> dict[str, Any]:
        """A new webhook's answer carries its signing key (``secret``) once."""
        return dict(self._call("PUT", "/v1/webhook", json={"url": url}))

    def get_webhook(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/webhook"))

    def delete_webhook(self) -> None:
        raise_for_problem(self._http.delete("/v1/webhook"))

    def rotate_webhook_secret(self) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/webhook/rotate-secret"))

    def webhook_deliveries(self, *, state: str | None = None,
                           limit: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("state", state), ("limit", limit)) if v is not None}
        return list(self._call("GET", "/v1/webhook/deliveries", params=params)["items"])

    def replay_webhook(self, event_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/webhook/deliveries/{event_id}/replay"))
