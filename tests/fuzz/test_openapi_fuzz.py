"""The schemathesis gate: every operation of ``/openapi.json``, fuzzed against a real server
over a real database (SQLite, and PostgreSQL when ``QRGATE_TEST_DATABASE_URL`` is set).

What runs
    ``test_every_operation`` loads the OpenAPI document from a running stack (real uvicorn
    on loopback, see ``support.stack``) and, through schemathesis's pytest integration,
    generates requests for each operation in its examples, coverage and fuzzing phases,
    with positive and negative data. ``test_stateful_links`` chains operations along the
    OpenAPI links (inferred by schemathesis, plus the ones ``support.fuzz_gate.with_links``
    adds) in both data modes.

    Every request goes out as its rightful caller (``support.fuzz_callers``): the relying
    party's API key, a bound device's request signature over the exact body bytes, the
    starting browser's token, a grid card attempt's answer token, or no credential for
    public operations. Each schema-valid request to an authenticated operation is then sent
    again with the credential missing and wrong; those must be refused (401/403 where the
    rightful caller got through, never 2xx).
    The world is seeded first (``support.fuzz_world``) and its real ids, codes, passwords,
    OCRA answers and grid card cells are mixed into generated data, so handlers are
    reached, not only 404s.

    All of schemathesis's checks are on: not_a_server_error, status_code_conformance,
    content_type_conformance, response_headers_conformance, response_schema_conformance,
    negative_data_rejection, positive_data_acceptance, missing_required_header,
    unsupported_method, allow_header_conformance, use_after_free,
    ensure_resource_availability, ignored_auth, object_level_authorization. Some only act
    on what the document declares: ignored_auth on ``securitySchemes`` (the credential
    refusals above cover every authenticated operation whether or not they are declared),
    missing_required_header on declared header parameters, object_level_authorization on
    WFC peer identities (not configured); use_after_free and ensure_resource_availability
    need a scenario, so they act in the stateful test. Narrowed, by named statuses only:
    positive_data_acceptance per operation (``support.fuzz_gate.ACCEPTANCE_EXTRAS``) where
    the body carries a value only its issuer can make (a signed code, an OCRA response, a
    one-time password, a grid card's cell: a well-formed forgery is refused by design),
    where a rule no schema states refuses a well-formed value (422: a webhook URL's
    destination, a card serial's check symbol, a cross-field rule) or where the resource's
    state may have moved on (expired 410, locked 423); negative_data_rejection also counts
    413 (body over the size limit) as a rejection.

How it fails
    Failures are recorded, not raised into Hypothesis (which would stop an operation at its
    first failure and hide what comes after), and each test fails at the end with one entry
    per distinct failure: operation, check, the request as a curl command, the response,
    and for a 5xx the exception the server logged. (Pytest counts schemathesis's
    per-operation runs as subtests, which pass because nothing is raised in them; the
    verdict is the test's own.)

Budget
    ``QRGATE_FUZZ_EXAMPLES`` (default ``support.fuzz_gate.DEFAULT_EXAMPLES``): examples per
    operation in the fuzzing phase (the coverage phase adds its own deterministic cases;
    the stateful test runs half as many scenarios). The default (60) took 75-100 s for
    both databases together on the 2-core CI machine, within the gate's three-minute
    budget; raise it for longer local runs, e.g. ``QRGATE_FUZZ_EXAMPLES=500``. Runs are
    derandomized, so CI sees the same requests every time; ``QRGATE_FUZZ_SEED=<int>``
    explores other ones.

Run it
    ``QRGATE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m pytest -q tests/fuzz``
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis.errors import Flaky
from schemathesis import Case, Response

from support.fuzz_gate import Budget, Gate, settings_for_state_machine

schema = schemathesis.pytest.from_fixture("fuzz_schema")

STATEFUL_ATTEMPTS = 3
# A hang guard that grows with the budget: the default takes under a minute per test and
# database; a larger QRGATE_FUZZ_EXAMPLES takes proportionally longer.
TIMEOUT = 240 + 4 * Budget.from_env().examples


def fails_on_findings(test: Callable[..., None]) -> Callable[..., None]:
    """Run the (per-operation) schemathesis test, then fail once with everything it saw."""

    @functools.wraps(test)
    def run(*args: Any, request: pytest.FixtureRequest, **kwargs: Any) -> None:
        # schemathesis 4.32's lazy schema reads and rewrites ``node._nodeid`` to name each
        # operation; pytest 9.2 keeps the id elsewhere, so give it the attribute it expects.
        if not hasattr(request.node, "_nodeid"):
            request.node._nodeid = request.node.nodeid  # type: ignore[attr-defined]
        test(*args, request=request, **kwargs)
        gate: Gate = request.getfixturevalue("fuzz_gate")
        if gate.ledger.findings:
            pytest.fail(gate.ledger.summary(), pytrace=False)

    return run


@pytest.mark.timeout(TIMEOUT)
@fails_on_findings
@schema.parametrize()
def test_every_operation(case: Case, fuzz_gate: Gate) -> None:
    fuzz_gate.exercise(case)


@pytest.mark.timeout(TIMEOUT)
def test_stateful_links(fuzz_schema: schemathesis.BaseSchema, fuzz_gate: Gate,
                        fuzz_budget: Budget) -> None:
    gate = fuzz_gate

    class Workflow(fuzz_schema.as_state_machine()):  # type: ignore[misc]
        """Schemathesis's link-following state machine, calling as the rightful caller and
        recording failures in the gate's ledger instead of raising them."""

        attempt = "rightful caller"

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            attempt = gate.credentials.valid(case.operation.label, case.path_parameters)
            self.attempt = f"{attempt.label} (stateful step)"
            return {} if attempt.auth is None else {"auth": attempt.auth}

        def call(self, case: Case, **kwargs: Any) -> Response:
            gate.server_log.take()
            return super().call(case, **kwargs)  # type: ignore[no-any-return]

        def after_call(self, response: Response, case: Case) -> None:
            super().after_call(response, case)
            gate.after_call(case, response)

        def validate_response(self, response: Response, case: Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            gate.validate(case, response, attempt=self.attempt, kwargs=kwargs,
                          recorder=self.recorder)

    for _ in range(STATEFUL_ATTEMPTS):
        try:
            Workflow.run(settings=settings_for_state_machine(fuzz_budget))
            break
        except Flaky:
            # Which links can be followed depends on what the live server answered, and the
            # server's state moves on, so Hypothesis may find a replayed scenario taking
            # another turn and give up. That says nothing about the API (schemathesis's own
            # runner counts it as an inconsistent replay, not a failure); start again from
            # the state the server is in now, keeping what was recorded.
            continue
    if gate.ledger.findings:
        pytest.fail(gate.ledger.summary(), pytrace=False)
