"""The schemathesis gate's machinery: its configuration, the links it adds for stateful
runs, and how each generated request is sent, checked and recorded (see
``tests/fuzz/test_openapi_fuzz.py`` for what the gate is and how to run it)."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck
from schemathesis import Case, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from support.fuzz_callers import ATTEMPT_STARTS, Attempt, Credentials
from support.fuzz_ledger import Finding, Ledger, ServerLog, describe_request, describe_response
from support.fuzz_world import (
    OPERATION_BINDINGS,
    World,
    hostile_strings_binding,
    parameter_bindings,
    schemathesis_dictionaries,
)

EXAMPLES_VAR = "QRGATE_FUZZ_EXAMPLES"
SEED_VAR = "QRGATE_FUZZ_SEED"
# Tuned so both databases together stay within about three minutes on the 2-core CI machine.
DEFAULT_EXAMPLES = 60


@dataclass(frozen=True)
class Budget:
    """How much fuzzing one run does; ``QRGATE_FUZZ_EXAMPLES`` raises it for local runs."""

    examples: int
    seed: int | None

    @property
    def stateful_examples(self) -> int:
        return max(5, self.examples // 2)

    @property
    def stateful_steps(self) -> int:
        return 12

    @classmethod
    def from_env(cls) -> Budget:
        raw_seed = os.environ.get(SEED_VAR, "").strip()
        return cls(examples=int(os.environ.get(EXAMPLES_VAR, "") or DEFAULT_EXAMPLES),
                   seed=int(raw_seed) if raw_seed else None)


# ``positive_data_acceptance`` expects a request that matches the schema to be accepted
# (schemathesis's default: 2xx, 3xx, 401, 403, 404, 409, 429 or 5xx, the 5xx being
# not_a_server_error's business). Two kinds of operation get a few more statuses, each
# listed by name; everything else keeps the default, and 413 or a 400/422 that means
# "your well-formed input is invalid after all" still fails everywhere.
POSITIVE_DEFAULT: Final = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NEGATIVE_DEFAULT: Final = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428",
                           "429", "5xx"]
# The body carries a value only its issuer can make: a signed QG1: code, an OCRA response,
# a one-time password. No JSON Schema can tell a genuine one from a well-formed forgery,
# so such values are refused by design: malformed_code (400), bad_signature/unknown_key/
# wrong_response (401), wrong_code_type (422), expired or superseded (410).
ISSUED_VALUE_REFUSALS: Final = ["400", "410", "422"]
# The operation acts on a challenge, transaction or token whose state the fuzzer itself
# moves on: expired (410) and locked after too many failures (423) answer a valid request
# the way already_decided (409, in the default) does.
STATE_REFUSALS: Final = ["410", "423"]
ACCEPTANCE_EXTRAS: Final[Mapping[str, list[str]]] = {
    "POST /v1/confirm/scan": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/devices": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/txsign/verify": ISSUED_VALUE_REFUSALS,
    # A user who said "this wasn't me" gets no new challenge for a while (user_blocked, 423).
    "POST /v1/confirm/challenges": STATE_REFUSALS,
    # parent_code is a chain code; and the user's token may be locked (423).
    "POST /v1/txsign/transactions": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/txsign/tokens/{token_id}/activate": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/txsign/tokens/{token_id}/resync": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/txsign/transactions/{transaction_id}/response":
        ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    "POST /v1/confirm/challenges/{challenge_id}/otp": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    # An offline approval code only the user's phone can make (wrong_offline_code, 401);
    # offline_unavailable (409) for a user whose phones hold no offline secret.
    "POST /v1/confirm/challenges/{challenge_id}/offline-code":
        ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    # "report": true goes with "deny" only (a cross-field rule the schema cannot state):
    # with "approve" it is refused, 422 invalid_request.
    "POST /v1/confirm/challenges/{challenge_id}/decision": [*STATE_REFUSALS, "422"],
    # A report names a challenge or a transaction, not both (a cross-field rule too).
    "POST /v1/users/{login}/reports": ["422"],
    "POST /v1/confirm/challenges/{challenge_id}/cancel": STATE_REFUSALS,
    "POST /v1/confirm/challenges/{challenge_id}/rotate": STATE_REFUSALS,
    "GET /v1/confirm/challenges/{challenge_id}/qr.png": STATE_REFUSALS,
    "GET /v1/confirm/challenges/{challenge_id}/qr.svg": STATE_REFUSALS,
    # The challenge code of a transaction whose signer's token is locked (423).
    "GET /v1/txsign/transactions/{transaction_id}/challenge.png": STATE_REFUSALS,
    "GET /v1/txsign/transactions/{transaction_id}/challenge.svg": STATE_REFUSALS,
    # A well-formed URL may still name a place webhooks may not reach (bad_webhook_url):
    # this machine, a private or link-local address, a host name that is not one.
    "PUT /v1/webhook": ["422"],
    # App lock: the fuzzer's own wrong PIN proofs block the device's PIN (pin_locked, 423).
    "PUT /v1/devices/me/lock/pin": STATE_REFUSALS,
    "POST /v1/devices/me/lock/off": STATE_REFUSALS,
    "POST /v1/devices/me/lock/webauthn": STATE_REFUSALS,
    # Scheme A. Starting an attempt: the user's card may have expired (card_expired, 410)
    # and the user may be locked by the fuzzer's own wrong passwords and cells (user_locked,
    # 423) or paused by its reports (user_blocked, 423).
    "POST /v1/gridcard/sign-in": STATE_REFUSALS,
    "POST /v1/gridcard/attempts": STATE_REFUSALS,
    # A relying party's signed code: any other is malformed, forged or of another type.
    "POST /v1/gridcard/scan": ISSUED_VALUE_REFUSALS,
    # A cell only the printed card holds: anything else is malformed_code or
    # unsupported_version (400); late_answer or expired (410); the user locked (423).
    "POST /v1/gridcard/attempts/{attempt_id}/answer": ISSUED_VALUE_REFUSALS + STATE_REFUSALS,
    # The attempt may have expired meanwhile (expired, 410).
    "POST /v1/gridcard/attempts/{attempt_id}/reissue": ["410"],
    "POST /v1/gridcard/attempts/{attempt_id}/cancel": ["410"],
    "GET /v1/gridcard/attempts/{attempt_id}/qr.png": ["410"],
    "GET /v1/gridcard/attempts/{attempt_id}/qr.svg": ["410"],
    # A serial ends with a check symbol, which no pattern states: a mistyped one is refused
    # as invalid_field (422) before any lookup.
    "POST /v1/gridcard/cards/{serial}/revoke": ["422"],
}


def fuzz_config(world: World, *, base_url: str, budget: Budget) -> SchemathesisConfig:
    """The gate's schemathesis configuration, in the shape of ``schemathesis.toml``."""
    generation: dict[str, Any] = {
        # Positive and negative data alike.
        "mode": "all",
        "max-examples": budget.examples,
        # NUL characters and every other code point are fair game: clients send them.
        "allow-x00": True,
        "codec": "utf-8",
        # Derandomized: CI sees the same cases every run; a seed (QRGATE_FUZZ_SEED) explores.
        "deterministic": budget.seed is None,
        # Shrinking is pointless here: failures are recorded, never raised into Hypothesis.
        "no-shrink": True,
        "database": "none",
        "dictionaries": hostile_strings_binding(),
        # Credentials come from the harness (support.fuzz_callers), signed over the exact
        # bytes sent; values schemathesis made up for declared security schemes would only
        # shadow them (a random browser token beats a valid API key, say).
        "with-security-parameters": False,
    }
    data: dict[str, Any] = {
        "base-url": base_url,
        "generation": generation,
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": budget.stateful_steps},
        },
        # A pending challenge's event stream stays open until the challenge ends, and the
        # test clock never moves: read the first state event and hang up.
        "max-stream-events": 1,
        "request-timeout": 10,
        # The credentials are throwaway test values, and a reproduction needs them verbatim.
        "output": {"sanitization": {"enabled": False}},
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        # Every built-in check; the ones with nothing to work on here are listed in the
        # test module's docstring.
        "checks": {
            "enabled": True,
            # An over-long body is refused with 413 before anything parses it: a rejection,
            # which schemathesis's default list for negative data does not name.
            "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DEFAULT, "413"]},
        },
        "operations": operation_configs(),
        **schemathesis_dictionaries(world),
    }
    if budget.seed is not None:
        data["seed"] = budget.seed
    return SchemathesisConfig.from_dict(data)


def operation_configs() -> list[dict[str, Any]]:
    """One ``[[operations]]`` entry per operation with settings of its own."""
    entries: dict[str, dict[str, Any]] = {}
    for name, extra in ACCEPTANCE_EXTRAS.items():
        statuses = POSITIVE_DEFAULT + sorted(set(extra))
        entry = entries.setdefault(name, {"include-name": name})
        entry["checks"] = {"positive_data_acceptance": {"expected-statuses": statuses}}
    for name, bindings in OPERATION_BINDINGS.items():
        entry = entries.setdefault(name, {"include-name": name})
        entry["parameters"] = parameter_bindings(bindings)
    return list(entries.values())


def with_links(raw: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document plus the links a client follows, for the stateful phase.

    The document declares no links and schemathesis's inference misses the main ones (a
    started challenge or transaction and everything done with its id), so the gate adds
    them to its own copy; the product's document is not changed. Links are found by the
    path parameter they fill, so a renamed or added route is linked without edits here."""
    doc = copy.deepcopy(raw)
    paths: dict[str, dict[str, Any]] = doc["paths"]

    def path_parameters(operation: dict[str, Any]) -> set[str]:
        return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}

    def taking(parameters: set[str], *, under: str, but: str = "^$") -> list[tuple[str, str]]:
        """Operations below ``under`` whose path parameters are exactly ``parameters``."""
        return [(path, method) for path, operations in paths.items()
                if path.startswith(under) and not re.search(but, path)
                for method, operation in operations.items()
                if isinstance(operation, dict) and "responses" in operation
                and path_parameters(operation) == parameters]

    def link(source: tuple[str, str], targets: list[tuple[str, str]],
             parameters: dict[str, str], body: dict[str, str | None] | None = None) -> None:
        path, method = source
        operation = paths.get(path, {}).get(method)
        if operation is None:
            return  # the route is gone; nothing to link from
        status = next((code for code in operation["responses"] if code.startswith("2")), None)
        if status is None:
            return
        links = operation["responses"][status].setdefault("links", {})
        for target_path, target_method in targets:
            target = paths.get(target_path, {}).get(target_method)
            if target is None:
                continue
            definition: dict[str, Any] = {"operationId": target["operationId"],
                                          "parameters": {name: parameters[name] for name in
                                                         path_parameters(target)}}
            if body is not None:
                # Merged into the generated body by schemathesis.
                definition["requestBody"] = body
            # The document's own links, should it grow some, take precedence.
            links.setdefault(target["operationId"], definition)

    challenge = {"challenge_id": "$response.body#/challenge_id"}
    link(("/v1/confirm/challenges", "post"),
         taking({"challenge_id"}, under="/v1/confirm/challenges/"), challenge)
    # The phone scans the code the page shows, then decides.
    link(("/v1/confirm/challenges", "post"), [("/v1/confirm/scan", "post")], {},
         body={"code": "$response.body#/code"})
    link(("/v1/confirm/scan", "post"),
         taking({"challenge_id"}, under="/v1/confirm/challenges/"), challenge)
    transaction = {"transaction_id": "$response.body#/transaction_id"}
    # A link's text is published once the transaction is signed, not before.
    link(("/v1/txsign/transactions", "post"),
         taking({"transaction_id"}, under="/v1/txsign/transactions/", but="/text$"),
         transaction)
    link(("/v1/txsign/transactions/{transaction_id}/response", "post"),
         taking({"transaction_id"}, under="/v1/txsign/transactions/"), transaction)
    link(("/v1/txsign/tokens", "post"),
         taking({"token_id"}, under="/v1/txsign/tokens/"), {"token_id": "$response.body#/token_id"})
    # A new user's report names none of their requests: they have none yet (a generated id
    # would be another's, refused as unknown, which the availability check takes for the
    # user missing).
    link(("/v1/users", "post"), taking({"login"}, under="/v1/users/", but="/reports$"),
         {"login": "$response.body#/login"})
    link(("/v1/users", "post"), [("/v1/users/{login}/reports", "post")],
         {"login": "$response.body#/login"},
         body={"challenge_id": None, "transaction_id": None})
    # A new phone binds itself with the enrolment code (and the code shown to the user).
    link(("/v1/users/{login}/enrolments", "post"), [("/v1/devices", "post")], {},
         body={"code": "$response.body#/code", "confirm_code": "$response.body#/confirm_code"})
    link(("/v1/devices", "post"), taking({"login", "device_id"}, under="/v1/users/"),
         {"login": "$response.body#/login", "device_id": "$response.body#/device_id"})
    # Scheme A: an attempt started in the app alone or by a relying party, and everything
    # done with its id; the app joins the relying party's attempt by its code.
    attempt = {"attempt_id": "$response.body#/attempt_id"}
    for start in ("/v1/gridcard/sign-in", "/v1/gridcard/attempts", "/v1/gridcard/scan"):
        link((start, "post"), taking({"attempt_id"}, under="/v1/gridcard/attempts/"), attempt)
    link(("/v1/gridcard/attempts", "post"), [("/v1/gridcard/scan", "post")], {},
         body={"code": "$response.body#/code"})
    # A card issued (its serial in a header: the body is the printable PDF) or listed, then
    # revoked.
    link(("/v1/gridcard/cards", "post"), [("/v1/gridcard/cards/{serial}/revoke", "post")],
         {"serial": "$response.header.Qrgate-Card-Serial"})
    link(("/v1/gridcard/cards", "get"), [("/v1/gridcard/cards/{serial}/revoke", "post")],
         {"serial": "$response.body#/items/0/serial"})
    return doc


def load_schema(world: World, *, base_url: str, budget: Budget) -> schemathesis.BaseSchema:
    raw = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(
        with_links(raw), config=fuzz_config(world, base_url=base_url, budget=budget))


def _json(response: Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _is_positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


UNBINDS: Final = frozenset({"DELETE /v1/devices/me",
                            "DELETE /v1/users/{login}/devices/{device_id}"})


@dataclass
class Gate:
    """Sends each generated case as its rightful caller and as impostors; records failures."""

    world: World
    ledger: Ledger
    server_log: ServerLog

    @property
    def credentials(self) -> Credentials:
        return self.world.credentials

    def exercise(self, case: Case) -> None:
        label = case.operation.label
        valid = self.credentials.valid(label, case.path_parameters)
        response = self.send(case, valid)
        if response is None or not _is_positive(case):
            # A request the schema already rejects proves nothing about credentials.
            return
        for attempt in self.credentials.refused(label):
            refused = self.send(case, attempt)
            if refused is not None:
                self.check_refused(case, attempt, refused, valid_status=response.status_code)

    def send(self, case: Case, attempt: Attempt) -> Response | None:
        kwargs: dict[str, Any] = {} if attempt.auth is None else {"auth": attempt.auth}
        self.server_log.take()  # anything logged before this request is not its doing
        try:
            response = case.call(**kwargs)
        except requests.RequestException as error:
            self.ledger.add(Finding(
                operation=case.operation.label, kind="no response [transport]",
                key=type(error).__name__, attempt=attempt.label,
                request=case.as_curl_command(), response=f"{type(error).__name__}: {error}",
                detail="the server did not answer", crash=self.server_log.take()))
            return None
        self.after_call(case, response)
        self.validate(case, response, attempt=attempt.label, kwargs=kwargs)
        return response

    def after_call(self, case: Case, response: Response) -> None:
        label = case.operation.label
        self.ledger.count(label, response)
        if not 200 <= response.status_code < 300:
            return
        if label == "POST /v1/confirm/challenges":
            self.credentials.remember_challenge(_json(response))
        elif label in ATTEMPT_STARTS:
            self.credentials.remember_attempt(_json(response))
        elif label in UNBINDS:
            body = _json(response)
            if isinstance(body, dict) and isinstance(body.get("device_id"), str):
                self.world.replace_unbound(body["device_id"])

    def validate(self, case: Case, response: Response, *, attempt: str,
                 kwargs: dict[str, Any], recorder: Any = None) -> None:
        crash = self.server_log.take()
        try:
            case.validate_response(response, transport_kwargs=kwargs or None,
                                   recorder=recorder)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.ledger.add_failure(failure, case=case, response=response,
                                        attempt=attempt, crash=crash)

    def check_refused(self, case: Case, attempt: Attempt, response: Response, *,
                      valid_status: int) -> None:
        """Without its credential a request must never succeed; and where the rightful
        caller got through (2xx), the impostor must be stopped at the door (401/403)."""
        status = response.status_code
        if 200 <= status < 300:
            problem = f"succeeded ({status}) with {attempt.label}"
        elif 200 <= valid_status < 300 and status not in (401, 403):
            problem = (f"answered {status} with {attempt.label}, where the rightful caller "
                       f"got {valid_status}: expected 401 or 403")
        else:
            return
        self.ledger.add(Finding(
            operation=case.operation.label, kind="credential not enforced [qrgate callers]",
            key=f"{attempt.label} {status}", attempt=attempt.label,
            request=describe_request(case, response), response=describe_response(response),
            detail=problem))


def settings_for_state_machine(budget: Budget) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=budget.stateful_examples,
        stateful_step_count=budget.stateful_steps,
        deadline=None,
        derandomize=budget.seed is None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
