"""Scheme C's checks (``qrgate.core.confirm``) on their own: real codes signed by a real key,
each check met at its boundary, and every refusal told apart by its code.

The server tests drive the same checks through HTTP and a database; these pin each
condition of steps 604-608 without either, so that mutation testing (scripts/mutation.sh)
finds a weakened check from tests/core alone.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from qrgate.core.codes import CodeType, encode_code
from qrgate.core.confirm import (
    CHALLENGE_ID_BYTES,
    NUMBER_MAX,
    NUMBER_MIN,
    ChallengeView,
    ConfirmClaim,
    ConfirmState,
    Decision,
    DeviceView,
    check_attempts,
    check_decision,
    check_scan,
    is_repeated_scan,
    issue_code,
    new_number,
    new_verification_code,
    read_code,
)
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.core.policy import VerifierKind
from qrgate.errors import QrgateError

NOW = 1_800_000_000
RING = KeyRing(active=SigningKey.generate(now=NOW))
OTHER_RING = KeyRing(active=SigningKey.generate(now=NOW))
ISSUER = "qrgate-test"

CHALLENGE = ChallengeView(
    challenge_id=bytes(range(16)),
    state=ConfirmState.PENDING,
    org_id=7,
    user_id=42,
    business_id="web",
    login="alice",
    operation="transfer",
    amount="25.00 EUR",
    url="https://bank.example/t/1",
    number=None,
    verification_code=b"\x11" * 8,
    device_id=None,
    expires_at=NOW + 300,
)
DEVICE = DeviceView(device_id="d" * 32, user_id=42, active=True)


def code_for(challenge: ChallengeView = CHALLENGE, *, number_matching: bool = False,
             ttl: int = 60, now: int = NOW) -> str:
    return issue_code(challenge=challenge, number_matching=number_matching, issuer=ISSUER,
                      now=now, ttl=ttl, keyring=RING)


def refusal(error: pytest.ExceptionInfo[QrgateError]) -> str:
    return error.value.code


def scan(challenge: ChallengeView = CHALLENGE, *, device: DeviceView = DEVICE,
         code_challenge: ChallengeView | None = None, number_matching: bool = False,
         now: float = NOW, issuer: str = ISSUER) -> None:
    code = read_code(code_for(code_challenge or challenge, number_matching=number_matching),
                     keys=RING, now=NOW)
    check_scan(code=code, expected=challenge, device=device, expected_issuer=issuer, now=now)


def scanned(**changes: object) -> ChallengeView:
    values: dict[str, object] = {"state": ConfirmState.SCANNED, "device_id": DEVICE.device_id,
                                 **changes}
    return replace(CHALLENGE, **values)  # type: ignore[arg-type]


# --- 603: randomness in, values out ---------------------------------------------------------


def test_a_verification_code_is_exactly_eight_random_bytes() -> None:
    assert new_verification_code(b"\x01" * 8) == b"\x01" * 8
    for size in (0, 7, 9, 16):
        with pytest.raises(ValueError, match="8 random bytes"):
            new_verification_code(b"\x01" * size)


@pytest.mark.parametrize(("value", "number"), [
    (0, NUMBER_MIN),
    (89, NUMBER_MAX),
    (90, NUMBER_MIN),
    (2**32 - 1, NUMBER_MIN + (2**32 - 1) % 90),
])
def test_the_matching_number_spans_10_to_99(value: int, number: int) -> None:
    assert new_number(value.to_bytes(4, "big")) == number


def test_the_matching_number_reads_only_the_first_four_bytes() -> None:
    assert new_number(bytes(4) + b"\xff" * 4) == NUMBER_MIN
    assert {new_number(v.to_bytes(4, "big")) for v in range(90)} == set(range(10, 100))


# --- 604/606: the code carries the challenge, signed ----------------------------------------


def test_a_code_round_trips_every_field() -> None:
    code = read_code(code_for(number_matching=True), keys=RING, now=NOW)
    assert code.challenge_id == CHALLENGE.challenge_id
    assert code.verification_code == CHALLENGE.verification_code
    assert (code.org_id, code.business_id, code.login) == (7, "web", "alice")
    assert (code.operation, code.amount, code.url) == (
        "transfer", "25.00 EUR", "https://bank.example/t/1")
    assert code.number_matching is True
    assert code.issuer == ISSUER
    assert (code.issued_at, code.expires_at) == (NOW, NOW + 60)


def test_optional_fields_stay_absent() -> None:
    bare = replace(CHALLENGE, amount=None, url=None)
    code = read_code(code_for(bare), keys=RING, now=NOW)
    assert (code.amount, code.url, code.number_matching) == (None, None, False)


def test_a_code_never_outlives_its_challenge() -> None:
    assert read_code(code_for(ttl=60), keys=RING, now=NOW).expires_at == NOW + 60
    short = replace(CHALLENGE, expires_at=NOW + 30.9)
    assert read_code(code_for(short, ttl=60), keys=RING, now=NOW).expires_at == NOW + 30


def test_a_code_signed_by_another_key_is_refused() -> None:
    forged = issue_code(challenge=CHALLENGE, number_matching=False, issuer=ISSUER, now=NOW,
                        ttl=60, keyring=OTHER_RING)
    with pytest.raises(QrgateError) as error:
        read_code(forged, keys=RING, now=NOW)
    assert refusal(error) == "unknown_key"


def test_an_expired_code_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        read_code(code_for(ttl=60), keys=RING, now=NOW + 60 + 6)
    assert refusal(error) == "expired"


def test_only_a_qr_challenge_gets_a_code() -> None:
    with pytest.raises(QrgateError) as error:
        code_for(replace(CHALLENGE, verifier=VerifierKind.TOTP))
    assert refusal(error) == "wrong_verifier"


def _raw_code(claims: dict[int, object], *, code_id: bytes = b"\x11" * 8,
              code_type: CodeType = CodeType.CONFIRM) -> str:
    return encode_code(code_type=code_type, code_id=code_id, issued_at=NOW,
                       expires_at=NOW + 60, issuer=ISSUER, claims=claims, keyring=RING)


GOOD_CLAIMS: dict[int, object] = {
    ConfirmClaim.CHALLENGE: bytes(16), ConfirmClaim.ORG: 7, ConfirmClaim.BUSINESS: "web",
    ConfirmClaim.LOGIN: "alice", ConfirmClaim.OPERATION: "transfer",
}


def test_a_well_formed_raw_code_reads() -> None:
    code = read_code(_raw_code(GOOD_CLAIMS), keys=RING, now=NOW)
    assert code.org_id == 7 and code.number_matching is False


@pytest.mark.parametrize(("key", "value"), [
    (ConfirmClaim.CHALLENGE, bytes(CHALLENGE_ID_BYTES - 1)),
    (ConfirmClaim.CHALLENGE, bytes(CHALLENGE_ID_BYTES + 1)),
    (ConfirmClaim.CHALLENGE, "00" * 16),
    (ConfirmClaim.ORG, True),
    (ConfirmClaim.ORG, "7"),
    (ConfirmClaim.BUSINESS, 1),
    (ConfirmClaim.LOGIN, b"alice"),
    (ConfirmClaim.OPERATION, None),
    (ConfirmClaim.AMOUNT, 25),
    (ConfirmClaim.NUMBER_MATCHING, 1),
    (ConfirmClaim.URL, b"https://x"),
])
def test_claims_of_the_wrong_type_or_size_are_malformed(key: int, value: object) -> None:
    with pytest.raises(QrgateError) as error:
        read_code(_raw_code({**GOOD_CLAIMS, key: value}), keys=RING, now=NOW)
    assert refusal(error) == "malformed_code"


@pytest.mark.parametrize("key", [ConfirmClaim.CHALLENGE, ConfirmClaim.ORG,
                                 ConfirmClaim.BUSINESS, ConfirmClaim.LOGIN,
                                 ConfirmClaim.OPERATION])
def test_a_missing_required_claim_is_malformed(key: int) -> None:
    claims = {k: v for k, v in GOOD_CLAIMS.items() if k != key}
    with pytest.raises(QrgateError) as error:
        read_code(_raw_code(claims), keys=RING, now=NOW)
    assert refusal(error) == "malformed_code"


@pytest.mark.parametrize("size", [7, 9, 16])
def test_the_verification_code_is_eight_bytes(size: int) -> None:
    with pytest.raises(QrgateError) as error:
        read_code(_raw_code(GOOD_CLAIMS, code_id=b"\x11" * size), keys=RING, now=NOW)
    assert refusal(error) == "malformed_code"


def test_another_kind_of_code_is_not_a_confirmation() -> None:
    with pytest.raises(QrgateError) as error:
        read_code(_raw_code(GOOD_CLAIMS, code_type=CodeType.ENROL), keys=RING, now=NOW)
    assert refusal(error) == "wrong_code_type"


# --- 608, first half: the scan --------------------------------------------------------------


def test_the_right_device_scanning_the_current_code_passes() -> None:
    scan()
    scan(replace(CHALLENGE, number=55), number_matching=True)
    scan(now=CHALLENGE.expires_at - 0.001)


def test_a_code_from_another_qr_server_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        scan(issuer="another-server")
    assert refusal(error) == "wrong_issuer"


def test_a_code_of_another_challenge_is_refused() -> None:
    other = replace(CHALLENGE, challenge_id=bytes(16))
    with pytest.raises(QrgateError) as error:
        scan(code_challenge=other)
    assert refusal(error) == "field_mismatch"


@pytest.mark.parametrize("changes", [
    {"org_id": 8},
    {"business_id": "pos"},
    {"login": "bob"},
    {"operation": "login"},
    {"amount": "26.00 EUR"},
    {"amount": None},
    {"url": "https://evil.example/t/1"},
    {"url": None},
])
def test_every_field_of_the_code_must_match_the_challenge(changes: dict[str, object]) -> None:
    code_challenge = replace(CHALLENGE, **changes)  # type: ignore[arg-type]
    with pytest.raises(QrgateError) as error:
        scan(code_challenge=code_challenge)
    assert refusal(error) == "field_mismatch"


def test_the_number_matching_flag_must_match_the_challenge() -> None:
    with pytest.raises(QrgateError) as error:
        scan(replace(CHALLENGE, number=55), number_matching=False)
    assert refusal(error) == "field_mismatch"
    with pytest.raises(QrgateError) as error:
        scan(number_matching=True)
    assert refusal(error) == "field_mismatch"


def test_an_unbound_or_frozen_device_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        scan(device=replace(DEVICE, active=False))
    assert refusal(error) == "not_bound"


def test_a_device_of_another_user_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        scan(device=replace(DEVICE, user_id=43))
    assert refusal(error) == "wrong_user"


@pytest.mark.parametrize(("state", "code"), [
    (ConfirmState.APPROVED, "already_decided"),
    (ConfirmState.DENIED, "already_decided"),
    (ConfirmState.REJECTED, "already_decided"),
    (ConfirmState.EXPIRED, "expired"),
])
def test_a_closed_challenge_takes_no_scan(state: ConfirmState, code: str) -> None:
    with pytest.raises(QrgateError) as error:
        scan(replace(CHALLENGE, state=state))
    assert refusal(error) == code


@pytest.mark.parametrize("late", [0, 0.5, 100])
def test_a_scan_at_or_after_the_challenge_expiry_is_refused(late: float) -> None:
    with pytest.raises(QrgateError) as error:
        scan(now=CHALLENGE.expires_at + late)
    assert refusal(error) == "expired"


def test_a_second_scan_kills_the_challenge() -> None:
    with pytest.raises(QrgateError) as error:
        scan(replace(CHALLENGE, state=ConfirmState.SCANNED))
    assert refusal(error) == "scanned_twice"


def test_a_rotated_out_code_is_superseded() -> None:
    with pytest.raises(QrgateError) as error:
        scan(replace(CHALLENGE, verification_code=b"\x22" * 8),
             code_challenge=CHALLENGE)
    assert refusal(error) == "code_superseded"


def test_a_totp_challenge_takes_no_scan() -> None:
    code = read_code(code_for(), keys=RING, now=NOW)
    with pytest.raises(QrgateError) as error:
        check_scan(code=code, expected=replace(CHALLENGE, verifier=VerifierKind.TOTP),
                   device=DEVICE, expected_issuer=ISSUER, now=NOW)
    assert refusal(error) == "wrong_verifier"


# --- a lost reply: the same device sends the very code it scanned again ---------------------


def repeated(challenge: ChallengeView | None = None, *, code_challenge: ChallengeView = CHALLENGE,
             device_id: str = DEVICE.device_id, issuer: str = ISSUER,
             now: float = NOW) -> bool:
    code = read_code(code_for(code_challenge), keys=RING, now=NOW)
    return is_repeated_scan(code=code, expected=challenge or scanned(), device_id=device_id,
                            expected_issuer=issuer, now=now)


def test_the_scanning_device_repeating_its_accepted_code_is_a_repeat() -> None:
    assert repeated()
    assert repeated(now=CHALLENGE.expires_at - 0.5)


@pytest.mark.parametrize("state", [ConfirmState.PENDING, ConfirmState.APPROVED,
                                   ConfirmState.DENIED, ConfirmState.EXPIRED])
def test_only_a_challenge_waiting_for_its_decision_has_repeats(state: ConfirmState) -> None:
    assert not repeated(scanned(state=state))


@pytest.mark.parametrize("late", [0, 0.5])
def test_no_repeat_at_or_after_the_expiry(late: float) -> None:
    assert not repeated(now=CHALLENGE.expires_at + late)


def test_another_device_sending_the_code_is_no_repeat() -> None:
    assert not repeated(device_id="e" * 32)


def test_a_code_from_another_qr_server_is_no_repeat() -> None:
    assert not repeated(issuer="another-server")


def test_a_code_of_another_challenge_is_no_repeat() -> None:
    other = replace(CHALLENGE, challenge_id=bytes(16))
    assert not repeated(code_challenge=other)
    assert repeated(scanned(challenge_id=other.challenge_id), code_challenge=other)


def test_a_rotated_out_code_is_no_repeat() -> None:
    assert not repeated(scanned(verification_code=b"\x22" * 8))


@pytest.mark.parametrize("changes", [
    {"org_id": 8}, {"business_id": "app"}, {"login": "bob"}, {"operation": "login"},
    {"amount": "26.00 EUR"}, {"url": "https://bank.example/t/2"}, {"number": 55},
])
def test_a_code_whose_fields_differ_is_no_repeat(changes: dict[str, object]) -> None:
    assert not repeated(scanned(**changes))


# --- 608, second half: the decision ---------------------------------------------------------


def decide(challenge: ChallengeView, *, device: DeviceView = DEVICE,
           decision: Decision = Decision.APPROVE, number: int | None = None,
           now: float = NOW) -> None:
    check_decision(expected=challenge, device=device, decision=decision, number=number,
                   now=now)


def test_the_scanning_device_decides() -> None:
    decide(scanned())
    decide(scanned(), decision=Decision.DENY)
    decide(scanned(number=55), number=55)
    decide(scanned(), now=CHALLENGE.expires_at - 0.001)
    # Without number matching a number sent along is ignored.
    decide(scanned(), number=12)


def test_denying_needs_no_number() -> None:
    decide(scanned(number=55), decision=Decision.DENY)
    decide(scanned(number=55), decision=Decision.DENY, number=11)


def test_approving_needs_the_number_when_matching_is_on() -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(number=55))
    assert refusal(error) == "number_required"


@pytest.mark.parametrize("number", [54, 56, 5, 550, 0])
def test_a_wrong_number_is_refused(number: int) -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(number=55), number=number)
    assert refusal(error) == "number_mismatch"


def test_an_unscanned_challenge_takes_no_decision() -> None:
    with pytest.raises(QrgateError) as error:
        decide(replace(CHALLENGE, device_id=DEVICE.device_id))
    assert refusal(error) == "not_scanned"


def test_another_device_of_the_same_user_cannot_decide() -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(), device=replace(DEVICE, device_id="e" * 32))
    assert refusal(error) == "wrong_device"
    with pytest.raises(QrgateError) as error:
        decide(scanned(device_id=None))
    assert refusal(error) == "wrong_device"


def test_an_unbound_device_or_another_user_cannot_decide() -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(), device=replace(DEVICE, active=False))
    assert refusal(error) == "not_bound"
    with pytest.raises(QrgateError) as error:
        decide(scanned(), device=replace(DEVICE, user_id=43))
    assert refusal(error) == "wrong_user"


@pytest.mark.parametrize(("state", "code"), [
    (ConfirmState.APPROVED, "already_decided"),
    (ConfirmState.DENIED, "already_decided"),
    (ConfirmState.REJECTED, "already_decided"),
    (ConfirmState.EXPIRED, "expired"),
])
def test_a_closed_challenge_takes_no_decision(state: ConfirmState, code: str) -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(state=state))
    assert refusal(error) == code


@pytest.mark.parametrize("late", [0, 0.5])
def test_a_decision_at_or_after_expiry_is_refused(late: float) -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(), now=CHALLENGE.expires_at + late)
    assert refusal(error) == "expired"


def test_a_totp_challenge_takes_no_device_decision() -> None:
    with pytest.raises(QrgateError) as error:
        decide(scanned(verifier=VerifierKind.TOTP))
    assert refusal(error) == "wrong_verifier"


def test_the_attempt_budget_locks_at_its_limit() -> None:
    check_attempts(attempts=0, max_failures=5)
    check_attempts(attempts=4, max_failures=5)
    for attempts in (5, 6):
        with pytest.raises(QrgateError) as error:
            check_attempts(attempts=attempts, max_failures=5)
        assert refusal(error) == "locked"
