"""The phone app's side of scheme A (the printed QR grid card), for tests, demos and benches.

Step by step, as the app does it against ``/v1/gridcard`` (CN103078862A, claim 3):

1.  **Start.** Either the app alone signs the user in (:meth:`GridcardPhone.sign_in`:
    organisation, login and password), or it joins the attempt a relying party started by
    scanning the signed code its page shows (:meth:`GridcardPhone.scan_code`). Both give a
    :class:`Started`: the attempt, with the card serial and the position to scan, and the
    answer token that lets this phone answer it.
2.  **Look at the card.** The user finds the asked position on the card; the camera reads
    that cell out of a picture of the whole card (``qrgate.clients.gridcard_card``).
3.  **Answer** (:meth:`GridcardPhone.answer`) with the cell's content. The server accepts it
    only within the position's window; past it the answer is ``late_answer`` and the app
    asks for another position (:meth:`GridcardPhone.reissue`), as many times as the attempt
    allows (``reissues_left``).

:func:`answer_with_card` does steps 2 and 3 with a card image; :func:`authenticate_with_card`
all three for the app alone. Refusals are raised as
:class:`~qrgate.clients.relying_party.ApiError` carrying the server's stable code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx
from PIL.Image import Image

from qrgate.clients.gridcard_card import pick_cell
from qrgate.clients.relying_party import ApiError, raise_for_problem
from qrgate.core.gridcard_attempt import AttemptState
from qrgate.errors import Malformed

TOKEN_HEADER: Final = "qrgate-attempt-token"  # noqa: S105 - the header's name
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One sign-in with the card, as the server reports it."""

    attempt_id: str
    state: AttemptState
    # Why it ended (``authenticated``, ``reissue_limit``, ``card_revoked``, ...); None while
    # pending.
    reason: str | None
    login: str
    organisation: str
    # The relying party's application; None when the app started the attempt alone.
    application: str | None
    operation: str
    # As printed on the card: two groups of five.
    serial: str
    position: str
    position_seq: int
    window_seconds: int
    # Unix seconds on the server's clock; an answer after it is ``late_answer``.
    position_expires_at: float
    reissues_left: int
    created_at: float
    expires_at: float
    decided_at: float | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            attempt_id=str(data["attempt_id"]), state=AttemptState(data["state"]),
            reason=_optional_str(data["reason"]), login=str(data["login"]),
            organisation=str(data["organisation"]),
            application=_optional_str(data["application"]), operation=str(data["operation"]),
            serial=str(data["serial"]), position=str(data["position"]),
            position_seq=int(data["position_seq"]), window_seconds=int(data["window_seconds"]),
            position_expires_at=float(data["position_expires_at"]),
            reissues_left=int(data["reissues_left"]), created_at=float(data["created_at"]),
            expires_at=float(data["expires_at"]),
            decided_at=None if data["decided_at"] is None else float(data["decided_at"]))


@dataclass(frozen=True, kw_only=True)
class Service:
    """Who asks, when the phone joined a relying party's attempt."""

    organisation: str
    application: str | None
    business_id: str | None
    origin: str | None


@dataclass(frozen=True, kw_only=True)
class Requester:
    """Where the relying party says the sign-in comes from, for the user to recognise."""

    ip: str | None
    user_agent: str | None
    place: str | None


@dataclass(frozen=True, kw_only=True)
class Started:
    """An attempt this phone may answer."""

    attempt: Attempt
    # A secret: it lets its holder answer and follow this attempt, nothing else.
    answer_token: str
    # Set when the phone joined a relying party's attempt by its code; None in the app alone.
    service: Service | None = None
    requester: Requester | None = None


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _parsed(what: str, parse: Callable[[], T]) -> T:
    """A server's answer that does not hold what the contract promises is reported as such,
    not as a bug of this client."""
    try:
        return parse()
    except KeyError as error:
        raise Malformed(f"the server's {what} lacks {error}") from None
    except (TypeError, ValueError) as error:
        raise Malformed(f"the server's {what} is not as expected: {error}") from None


def _started(body: Mapping[str, Any]) -> Started:
    def parse() -> Started:
        service, requester = body.get("service"), body.get("requester")
        return Started(
            attempt=Attempt.from_dict(body), answer_token=str(body["answer_token"]),
            service=None if service is None else Service(
                organisation=str(service["organisation"]),
                application=_optional_str(service.get("application")),
                business_id=_optional_str(service.get("business_id")),
                origin=_optional_str(service.get("origin"))),
            requester=None if requester is None else Requester(
                ip=_optional_str(requester.get("ip")),
                user_agent=_optional_str(requester.get("user_agent")),
                place=_optional_str(requester.get("place"))))

    return _parsed("attempt", parse)


def _attempt(body: Mapping[str, Any]) -> Attempt:
    return _parsed("attempt", lambda: Attempt.from_dict(body))


@dataclass
class GridcardPhone:
    """The phone app talking to one qrgate server. It keeps no state between attempts: the
    caller holds each :class:`Started` (and so its answer token)."""

    base_url: str
    transport: httpx.BaseTransport | None = None
    show: Callable[[str], None] = field(default=lambda line: None)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, transport=self.transport, timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GridcardPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, answer_token: str | None = None,
              body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        headers = {} if answer_token is None else {TOKEN_HEADER: answer_token}
        response = self._http.request(method, path, json=body, headers=headers)
        raise_for_problem(response)
        result = response.json()
        if not isinstance(result, dict):
            raise Malformed("the server's answer is not a JSON object")
        return result

    def sign_in(self, *, organisation: str, login: str, password: str,
                operation: str | None = None, risk: str | None = None) -> Started:
        """The app alone: the password first; the server answers with the position to scan
        (a wrong password gives ``bad_credentials`` and no position)."""
        body: dict[str, Any] = {"organisation": organisation, "login": login,
                                "password": password}
        if operation is not None:
            body["operation"] = operation
        if risk is not None:
            body["risk"] = risk
        return _started(self._call("POST", "/v1/gridcard/sign-in", body=body))

    def scan_code(self, code: str) -> Started:
        """Join the attempt a relying party started: ``code`` is the ``QG1:`` text its page
        shows (the signed code is the credential)."""
        started = _started(self._call("POST", "/v1/gridcard/scan", body={"code": code}))
        service, requester = started.service, started.requester
        if service is not None:
            origin = f" ({service.origin})" if service.origin else ""
            self.show(f"{service.organisation} / {service.application or '?'}{origin} asks "
                      f"{started.attempt.login} to sign in")
        if requester is not None:
            self.show(f"from {requester.ip or '?'} ({requester.place or '?'}, "
                      f"{requester.user_agent or '?'})")
        return started

    def answer(self, attempt_id: str, *, answer_token: str, cell: str) -> Attempt:
        """Send the content of the scanned cell."""
        return _attempt(self._call("POST", f"/v1/gridcard/attempts/{attempt_id}/answer",
                                   answer_token=answer_token, body={"cell": cell}))

    def reissue(self, attempt_id: str, *, answer_token: str) -> Attempt:
        """Another position, once the current one's window has passed."""
        return _attempt(self._call("POST", f"/v1/gridcard/attempts/{attempt_id}/reissue",
                                   answer_token=answer_token, body={}))

    def get(self, attempt_id: str, *, answer_token: str) -> Attempt:
        return _attempt(self._call("GET", f"/v1/gridcard/attempts/{attempt_id}",
                                   answer_token=answer_token))


def answer_with_card(phone: GridcardPhone, started: Started, card_image: Image) -> Attempt:
    """Steps 2 and 3: read the asked cell out of ``card_image`` (a scan or photo of the
    card) and answer with it; after a ``late_answer``, ask for another position and answer
    that, while the attempt has reissues left. Other refusals are raised as they come."""
    attempt = started.attempt
    while True:
        phone.show(f"asked for cell {attempt.position} of card {attempt.serial} "
                   f"({attempt.window_seconds} s)")
        cell = pick_cell(card_image, attempt.position, serial=attempt.serial)
        phone.show(f"cell {attempt.position} found on the card")
        try:
            result = phone.answer(attempt.attempt_id, answer_token=started.answer_token,
                                  cell=cell)
        except ApiError as error:
            if error.code != "late_answer" or attempt.reissues_left < 1:
                raise
            phone.show(f"too late for {attempt.position}: asking for another position "
                       f"({attempt.reissues_left} left)")
            attempt = phone.reissue(attempt.attempt_id, answer_token=started.answer_token)
            continue
        phone.show(f"result: {result.state}")
        return result


def authenticate_with_card(phone: GridcardPhone, *, organisation: str, login: str,
                           password: str, card_image: Image, operation: str | None = None,
                           risk: str | None = None) -> Attempt:
    """The whole sign-in in the app alone: password, then the asked cell from the card."""
    started = phone.sign_in(organisation=organisation, login=login, password=password,
                            operation=operation, risk=risk)
    return answer_with_card(phone, started, card_image)
