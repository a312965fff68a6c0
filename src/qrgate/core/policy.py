"""An application's policy: number matching, verifier routing (SPEC step 603) and TTLs.

Stored as JSON on the application row; parsed and validated here so a bad policy is refused
when an operator sets it, not when a user is halfway through a confirmation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from qrgate.errors import InvalidField, VerifierUnavailable


class VerifierKind(StrEnum):
    QR = "qr"
    TOTP = "totp"


class NumberMatching(StrEnum):
    OFF = "off"
    ALWAYS = "always"
    # On when the operation is listed as risky or the amount reaches the threshold.
    RISK = "risk"


@dataclass(frozen=True, kw_only=True)
class AppPolicy:
    number_matching: NumberMatching = NumberMatching.RISK
    risky_operations: frozenset[str] = frozenset({"login", "password_change", "device_add"})
    amount_threshold: Decimal | None = Decimal("1000")
    default_verifier: VerifierKind = VerifierKind.QR
    verifiers_by_operation: Mapping[str, VerifierKind] = field(default_factory=dict)
    allowed_verifiers: frozenset[VerifierKind] = frozenset(VerifierKind)
    confirm_ttl: int | None = None
    # Approvals count only from a locked app that proves its unlock (qrgate.accounts.app_lock).
    require_app_lock: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> AppPolicy:
        try:
            matching = NumberMatching(str(raw.get("number_matching", NumberMatching.RISK)))
            threshold_raw = raw.get("amount_threshold", "1000")
            threshold = None if threshold_raw is None else Decimal(str(threshold_raw))
            by_operation = raw.get("verifiers_by_operation", {})
            allowed = raw.get("allowed_verifiers", [v.value for v in VerifierKind])
            risky = raw.get("risky_operations", sorted(cls().risky_operations))
            ttl = raw.get("confirm_ttl")
            require_lock = raw.get("require_app_lock", False)
            if not isinstance(by_operation, Mapping) or not isinstance(allowed, list):
                raise TypeError
            if not isinstance(risky, list) or not (ttl is None or isinstance(ttl, int)):
                raise TypeError
            if not isinstance(require_lock, bool):
                raise TypeError
            policy = cls(
                number_matching=matching,
                risky_operations=frozenset(str(op) for op in risky),
                amount_threshold=threshold,
                default_verifier=VerifierKind(str(raw.get("default_verifier", "qr"))),
                verifiers_by_operation={
                    str(op): VerifierKind(str(kind)) for op, kind in by_operation.items()
                },
                allowed_verifiers=frozenset(VerifierKind(str(kind)) for kind in allowed),
                confirm_ttl=ttl,
                require_app_lock=require_lock,
            )
        except (ValueError, TypeError, InvalidOperation):
            raise InvalidField("application policy is not valid") from None
        if policy.default_verifier not in policy.allowed_verifiers:
            raise InvalidField("default_verifier must be one of allowed_verifiers")
        return policy

    def to_dict(self) -> dict[str, object]:
        return {
            "number_matching": self.number_matching.value,
            "risky_operations": sorted(self.risky_operations),
            "amount_threshold": (
                None if self.amount_threshold is None else str(self.amount_threshold)
            ),
            "default_verifier": self.default_verifier.value,
            "verifiers_by_operation": {k: v.value for k, v in self.verifiers_by_operation.items()},
            "allowed_verifiers": sorted(v.value for v in self.allowed_verifiers),
            "confirm_ttl": self.confirm_ttl,
            "require_app_lock": self.require_app_lock,
        }

    def needs_number_matching(self, *, operation: str, amount: Decimal | None) -> bool:
        if self.number_matching == NumberMatching.ALWAYS:
            return True
        if self.number_matching == NumberMatching.OFF:
            return False
        if operation in self.risky_operations:
            return True
        return (
            amount is not None
            and self.amount_threshold is not None
            and amount >= self.amount_threshold
        )


def choose_verifier(
    *,
    policy: AppPolicy,
    operation: str,
    requested: VerifierKind | None,
    user_preference: VerifierKind | None,
    available: frozenset[VerifierKind],
) -> VerifierKind:
    """Step 603's routing: the request, then the user's preference, then the operation's
    mapping, then the application's default; only verifiers the app allows and the user
    has set up (``available``) qualify.
    """
    usable = policy.allowed_verifiers & available
    if requested is not None:
        if requested not in usable:
            raise VerifierUnavailable(f"verifier {requested.value!r} is not available here")
        return requested
    for candidate in (
        user_preference,
        policy.verifiers_by_operation.get(operation),
        policy.default_verifier,
    ):
        if candidate is not None and candidate in usable:
            return candidate
    if usable:
        return sorted(usable)[0]
    raise VerifierUnavailable("no verifier is available for this user")
