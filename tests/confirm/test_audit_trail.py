"""What each decision of scheme C writes down: one audit entry naming the event, the scheme,
who (organisation, application, user, device) and which challenge, with the outcome; the
challenge's stored state and reason; and which refusals count against whom. Operators and
their security teams read these; found unpinned by mutation testing (scripts/mutation.sh).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from qrgate.accounts import directory
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from qrgate.confirm.repository import ChallengeRow
from qrgate.core.confirm import issue_code
from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind
from qrgate.storage.audit import search_audit
from support import fresh
from support.stack import Stack

TOTP_ONLY = AppPolicy(number_matching=NumberMatching.OFF, default_verifier=VerifierKind.TOTP)


def last_entry(stack: Stack, challenge_id: str) -> dict[str, Any]:
    with stack.rt.read() as conn:
        return search_audit(conn, challenge_id=challenge_id, limit=1)[0]


def stored(stack: Stack, challenge_id: str) -> ChallengeRow:
    with stack.rt.read() as conn:
        return repository.load(conn, challenge_id)


def entry_of(stack: Stack, challenge_id: str, login: str = "alice") -> dict[str, Any]:
    """The challenge's last audit entry, checked to name its organisation, application and
    user (``login`` of the organisation)."""
    entry = last_entry(stack, challenge_id)
    row = stored(stack, challenge_id)
    with stack.rt.read() as conn:
        user = directory.find_user(conn, org_id=row.org_id, login=login)
    assert (entry["org_id"], entry["app_id"], entry["user_id"]) == (
        row.org_id, row.app_id, user.id)
    return entry


def refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def test_a_scan_and_an_approval_name_the_phone_and_the_challenge(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    challenge_id = started["challenge_id"]
    phone.scan_png(browser.qr_png())
    entry = entry_of(stack, challenge_id)
    assert (entry["event"], entry["scheme"], entry["reason"], entry["device_id"]) == (
        "confirm.scan", "confirm", "scanned", phone.device_id)
    phone.decide(challenge_id, approve=True)
    entry = entry_of(stack, challenge_id)
    assert (entry["event"], entry["scheme"], entry["reason"], entry["device_id"]) == (
        "confirm.approve", "confirm", "approved", phone.device_id)
    assert stored(stack, challenge_id).reason == "approved"


def test_a_denial_is_written_as_the_users(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    phone.scan_png(browser.qr_png())
    phone.decide(started["challenge_id"], approve=False)
    entry = entry_of(stack, started["challenge_id"])
    assert (entry["event"], entry["scheme"], entry["reason"], entry["device_id"]) == (
        "confirm.deny", "confirm", "denied_by_user", phone.device_id)
    assert stored(stack, started["challenge_id"]).reason == "denied_by_user"


def test_an_approval_by_password_names_the_application_not_a_phone(
        stack_factory: Any) -> None:
    stack: Stack = stack_factory(TOTP_ONLY)
    totp = fresh.totp(stack, "carol")
    started, browser = stack.start("carol")
    challenge_id = started["challenge_id"]
    stack.rp.submit_otp(challenge_id, totp.at(stack.clock()))
    entry = entry_of(stack, challenge_id, "carol")
    assert (entry["event"], entry["scheme"], entry["reason"], entry["device_id"]) == (
        "confirm.otp", "confirm", "approved", None)
    assert stored(stack, challenge_id).reason == "approved"
    assert browser.status()["state"] == "approved"


def test_a_password_for_an_expired_challenge_writes_the_expiry(stack_factory: Any) -> None:
    stack: Stack = stack_factory(TOTP_ONLY)
    totp = fresh.totp(stack, "carol")
    started, _ = stack.start("carol")
    challenge_id = started["challenge_id"]
    assert stored(stack, challenge_id).state == "pending"
    stack.clock.advance(3600)
    assert refusal(stack.rp.submit_otp, challenge_id, totp.at(stack.clock())) == "expired"
    assert stored(stack, challenge_id).state == "expired"
    assert entry_of(stack, challenge_id, "carol")["reason"] == "expired"


def test_a_cancel_is_written_as_the_relying_partys(stack: Stack) -> None:
    stack.enrolled_phone()
    started, _ = stack.start()
    challenge_id = started["challenge_id"]
    stack.rp.cancel(challenge_id)
    entry = entry_of(stack, challenge_id)
    assert (entry["event"], entry["scheme"], entry["reason"], entry["device_id"]) == (
        "confirm.cancel", "confirm", "cancelled", None)
    assert stored(stack, challenge_id).reason == "cancelled"


def test_cancelling_an_expired_challenge_writes_the_expiry(stack: Stack) -> None:
    stack.enrolled_phone()
    started, _ = stack.start()
    challenge_id = started["challenge_id"]
    stack.clock.advance(3600)
    assert refusal(stack.rp.cancel, challenge_id) == "expired"
    assert stored(stack, challenge_id).state == "expired"
    assert entry_of(stack, challenge_id)["reason"] == "expired"


def forged_scan(stack: Stack, phone: PhoneSimulator, challenge_id: str) -> str:
    """A code with the deployment's own signature over another amount: ``field_mismatch``."""
    rt = stack.rt
    row = stored(stack, challenge_id)
    forged = issue_code(challenge=dataclasses.replace(row.view(), amount="9999.00 EUR"),
                        number_matching=False, issuer=rt.settings.issuer,
                        now=int(stack.clock()), ttl=rt.settings.code_ttl, keyring=rt.keyring)
    return refusal(phone.scan_text, forged, verify_offline=False)


def test_mismatched_fields_count_against_the_challenge(stack_factory: Any) -> None:
    stack: Stack = stack_factory(max_failures=2)
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    challenge_id = started["challenge_id"]
    genuine = browser.qr_png()
    assert forged_scan(stack, phone, challenge_id) == "field_mismatch"
    assert stored(stack, challenge_id).attempts == 1
    assert forged_scan(stack, phone, challenge_id) == "field_mismatch"
    assert browser.status()["state"] == "rejected"
    assert refusal(phone.scan_png, genuine) == "locked"


def test_only_a_wrong_number_counts_against_the_user(stack_factory: Any) -> None:
    """A forged field ends no user's access: only guessing the number does."""
    stack: Stack = stack_factory(max_failures=5, user_max_failures=2)
    phone = stack.enrolled_phone()
    for _ in range(2):
        started, _ = stack.start()
        assert forged_scan(stack, phone, started["challenge_id"]) == "field_mismatch"
    with stack.rt.read() as conn:
        alice = directory.get_user(conn, stored(stack, started["challenge_id"]).user_id)
    assert alice.failed_attempts == 0
    assert stack.start()[0]["state"] == "pending"
