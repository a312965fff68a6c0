"""An application's policy (``qrgate.core.policy``): what an operator may set, when number
matching turns on, and step 603's choice of verifier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind, choose_verifier
from qrgate.errors import QrgateError

QR, TOTP = VerifierKind.QR, VerifierKind.TOTP
BOTH = frozenset({QR, TOTP})


def test_the_default_policy() -> None:
    policy = AppPolicy.from_dict({})
    assert policy == AppPolicy()
    assert policy.number_matching == NumberMatching.RISK
    assert policy.amount_threshold == Decimal("1000")
    assert policy.risky_operations == {"login", "password_change", "device_add"}
    assert policy.default_verifier == QR and policy.allowed_verifiers == BOTH
    assert policy.confirm_ttl is None and dict(policy.verifiers_by_operation) == {}
    assert policy.require_app_lock is False


def test_a_policy_round_trips_through_its_stored_form() -> None:
    policy = AppPolicy(number_matching=NumberMatching.ALWAYS,
                       risky_operations=frozenset({"wire"}), amount_threshold=None,
                       default_verifier=TOTP, verifiers_by_operation={"login": QR},
                       allowed_verifiers=BOTH, confirm_ttl=90, require_app_lock=True)
    stored = policy.to_dict()
    assert stored == {"number_matching": "always", "risky_operations": ["wire"],
                      "amount_threshold": None, "default_verifier": "totp",
                      "verifiers_by_operation": {"login": "qr"},
                      "allowed_verifiers": ["qr", "totp"], "confirm_ttl": 90,
                      "require_app_lock": True}
    assert AppPolicy.from_dict(stored) == policy
    assert AppPolicy().to_dict()["amount_threshold"] == "1000"
    assert AppPolicy.from_dict(AppPolicy().to_dict()) == AppPolicy()
    assert AppPolicy.from_dict({"amount_threshold": "250.50"}).amount_threshold == Decimal(
        "250.50")


@pytest.mark.parametrize("raw", [
    {"number_matching": "sometimes"},
    {"require_app_lock": "yes"},
    {"amount_threshold": "lots"},
    {"verifiers_by_operation": ["login"]},
    {"verifiers_by_operation": {"login": "sms"}},
    {"allowed_verifiers": "qr"},
    {"allowed_verifiers": ["qr", "sms"]},
    {"risky_operations": "login"},
    {"confirm_ttl": "60"},
    {"confirm_ttl": 60.0},
    {"default_verifier": "sms"},
    {"default_verifier": "totp", "allowed_verifiers": ["qr"]},
])
def test_an_invalid_policy_is_refused_when_set(raw: dict[str, object]) -> None:
    with pytest.raises(QrgateError) as error:
        AppPolicy.from_dict(raw)
    assert error.value.code == "invalid_field"


def test_number_matching_always_and_off() -> None:
    always = AppPolicy(number_matching=NumberMatching.ALWAYS)
    off = AppPolicy(number_matching=NumberMatching.OFF)
    assert always.needs_number_matching(operation="transfer", amount=None)
    assert not off.needs_number_matching(operation="login", amount=Decimal("1000000"))


def test_number_matching_for_risky_operations_and_large_amounts() -> None:
    risk = AppPolicy()
    assert risk.needs_number_matching(operation="login", amount=None)
    assert risk.needs_number_matching(operation="transfer", amount=Decimal("1000"))
    assert risk.needs_number_matching(operation="transfer", amount=Decimal("1000.01"))
    assert not risk.needs_number_matching(operation="transfer", amount=Decimal("999.99"))
    assert not risk.needs_number_matching(operation="transfer", amount=None)
    no_threshold = AppPolicy(amount_threshold=None)
    assert not no_threshold.needs_number_matching(operation="transfer",
                                                  amount=Decimal("1000000"))


def choose(policy: AppPolicy | None = None, *, operation: str = "transfer",
           requested: VerifierKind | None = None, preference: VerifierKind | None = None,
           available: frozenset[VerifierKind] = BOTH) -> VerifierKind:
    return choose_verifier(policy=policy or AppPolicy(), operation=operation,
                           requested=requested,
                           user_preference=preference, available=available)


def test_the_request_wins_when_it_is_usable() -> None:
    assert choose(requested=TOTP, preference=QR) == TOTP
    for policy, available in ((AppPolicy(allowed_verifiers=frozenset({QR})), BOTH),
                              (AppPolicy(), frozenset({QR}))):
        with pytest.raises(QrgateError) as error:
            choose(policy, requested=TOTP, available=available)
        assert error.value.code == "verifier_unavailable"


def test_then_the_users_preference_then_the_operation_then_the_default() -> None:
    by_operation = AppPolicy(verifiers_by_operation={"login": TOTP})
    assert choose(preference=TOTP) == TOTP
    assert choose(by_operation, operation="login") == TOTP
    assert choose(by_operation, operation="login", preference=QR) == QR
    assert choose(AppPolicy(default_verifier=TOTP)) == TOTP
    assert choose() == QR


def test_only_usable_verifiers_are_chosen() -> None:
    assert choose(preference=TOTP, available=frozenset({QR})) == QR
    only_totp = AppPolicy(default_verifier=TOTP, allowed_verifiers=frozenset({TOTP}))
    assert choose(only_totp, preference=QR) == TOTP
    # Nothing named qualifies: the first usable one, in a fixed order.
    assert choose(AppPolicy(default_verifier=TOTP), available=frozenset({QR})) == QR
    with pytest.raises(QrgateError) as error:
        choose(AppPolicy(allowed_verifiers=frozenset({TOTP}), default_verifier=TOTP),
               available=frozenset({QR}))
    assert error.value.code == "verifier_unavailable"
