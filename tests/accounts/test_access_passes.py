"""Lost phone: a temporary access pass, issued by the relying party (API) or an operator,
enrols a new phone without the old one: once, before it expires, and (by default) it
unbinds the old phone. The relying party hears of both (webhooks); everything is audited;
the pass itself is stored as a keyed digest only and never reaches a log line."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qrgate.accounts import directory
from qrgate.accounts.access_passes import (
    ALPHABET,
    MAX_TTL,
    MIN_TTL,
    new_access_pass,
    normalise_pass,
    shown,
)
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.storage.audit import search_audit
from qrgate.storage.models import access_passes, webhook_events
from support.race import race
from support.stack import Stack

# --- the pass itself (pure) ------------------------------------------------------------


def test_a_pass_holds_80_bits_in_four_groups_of_crockford_base32() -> None:
    stored = new_access_pass()
    assert len(stored) == 16 and set(stored) <= set(ALPHABET) and len(ALPHABET) == 32
    assert shown(stored) == "-".join(stored[i:i + 4] for i in (0, 4, 8, 12))
    assert len({new_access_pass() for _ in range(100)}) == 100


@pytest.mark.parametrize(("typed", "stored"), [
    ("7K3M-Q9XD-2HVA-RT0E", "7K3MQ9XD2HVART0E"),
    ("7k3m q9xd 2hva rt0e", "7K3MQ9XD2HVART0E"),
    (" 7k3mq9xd2hvartOe ", "7K3MQ9XD2HVART0E"),  # O typed for 0
    ("1111-iiii-LLLL-llll", "1111111111111111"),  # I and L typed for 1
])
def test_typing_variants_normalise_to_the_stored_pass(typed: str, stored: str) -> None:
    assert normalise_pass(typed) == stored


@pytest.mark.parametrize("typed", [
    "", "7K3M-Q9XD-2HVA-RT0", "7K3M-Q9XD-2HVA-RT0EE", "7K3M-Q9XD-2HVA-RT0U",  # no U
    "7K3M_Q9XD_2HVA_RT0E",
])
def test_what_cannot_be_a_pass_normalises_to_none(typed: str) -> None:
    assert normalise_pass(typed) is None


# --- issue and redeem through the API --------------------------------------------------


def devices_of(stack: Stack, login: str = "alice") -> dict[str, str]:
    return {d["device_id"]: d["status"] for d in stack.rp.list_devices(login)}


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value.status, caught.value.code


def test_a_lost_phone_is_replaced_with_a_pass(stack: Stack) -> None:
    lost = stack.enrolled_phone(name="lost phone")
    issued = stack.rp.issue_access_pass("alice")
    assert set(issued) == {"access_pass_id", "access_pass", "expires_at", "revoke_devices"}
    assert issued["revoke_devices"] is True
    assert issued["expires_at"] == stack.clock() + stack.rt.settings.access_pass_ttl
    new = stack.phone("new phone")
    # Typed by hand: lower case, spaces for dashes.
    result = new.enrol_with_pass(issued["access_pass"].lower().replace("-", " "))
    assert (result["login"], result["status"], result["name"]) == ("alice", "active",
                                                                   "new phone")
    assert (result["org_id"], result["issuer"]) == (1, stack.rt.settings.issuer)
    assert result["offline_secret"]
    assert devices_of(stack) == {lost.device_id: "unbound", new.device_id: "active"}
    started, _ = stack.start()
    assert refused(lost.scan_text, started["code"]) == (401, "device_unbound")
    new.scan_text(started["code"])
    assert new.decide(started["challenge_id"], approve=True)["state"] == "approved"


def test_a_pass_can_keep_the_other_devices(stack: Stack) -> None:
    old = stack.enrolled_phone()
    issued = stack.rp.issue_access_pass("alice", revoke_devices=False, ttl_seconds=600)
    assert issued["revoke_devices"] is False
    assert issued["expires_at"] == stack.clock() + 600
    new = stack.phone("second phone")
    new.enrol_with_pass(issued["access_pass"])
    assert devices_of(stack) == {old.device_id: "active", new.device_id: "active"}


def test_a_pass_is_used_once(stack: Stack) -> None:
    issued = stack.rp.issue_access_pass("alice")
    first = stack.phone()
    first.enrol_with_pass(issued["access_pass"])
    assert refused(stack.phone().enrol_with_pass, issued["access_pass"]) == (
        409, "access_pass_used")
    assert list(devices_of(stack)) == [first.device_id]


def test_a_pass_expires(stack: Stack) -> None:
    issued = stack.rp.issue_access_pass("alice", ttl_seconds=MIN_TTL)
    stack.clock.advance(MIN_TTL)
    assert refused(stack.phone().enrol_with_pass, issued["access_pass"]) == (
        410, "access_pass_expired")
    assert devices_of(stack) == {}


def test_a_new_pass_ends_the_earlier_one(stack: Stack) -> None:
    earlier = stack.rp.issue_access_pass("alice")
    later = stack.rp.issue_access_pass("alice")
    assert refused(stack.phone().enrol_with_pass, earlier["access_pass"]) == (
        410, "access_pass_expired")
    stack.phone().enrol_with_pass(later["access_pass"])


def test_an_unknown_pass_is_not_found(stack: Stack) -> None:
    issued = stack.rp.issue_access_pass("alice")
    other = next(c for c in ALPHABET if c != issued["access_pass"][0])
    assert refused(stack.phone().enrol_with_pass, other + issued["access_pass"][1:]) == (
        404, "access_pass_not_found")
    # 16 characters of the pattern that are not Crockford base32 (U) find nothing either.
    assert refused(stack.phone().enrol_with_pass, "UUUU-UUUU-UUUU-UUUU") == (
        404, "access_pass_not_found")


def test_passes_of_other_organisations_are_theirs(stack: Stack) -> None:
    """The rival's pass binds the rival's alice, never the bank's namesake."""
    issued = stack.other.rp.issue_access_pass("alice", revoke_devices=False)
    result = stack.phone().enrol_with_pass(issued["access_pass"])
    assert result["org_id"] == stack.other.org_id
    assert devices_of(stack) == {}
    assert refused(stack.rp.issue_access_pass, "dave") == (404, "user_not_found")


def test_the_body_may_be_left_out(stack: Stack) -> None:
    response = httpx.post(f"{stack.base_url}/v1/users/alice/access-passes",
                          headers={"Authorization": f"Bearer {stack.api_key}"})
    assert response.status_code == 201, response.text
    assert response.json()["revoke_devices"] is True
    assert response.json()["expires_at"] == stack.clock() + stack.rt.settings.access_pass_ttl


@pytest.mark.parametrize("body", [
    {"ttl_seconds": MIN_TTL - 1}, {"ttl_seconds": MAX_TTL + 1}, {"ttl_seconds": "600"},
    {"revoke_devices": "yes"}, {"extra": 1},
])
def test_bad_issue_requests_are_422(stack: Stack, body: dict[str, Any]) -> None:
    response = httpx.post(f"{stack.base_url}/v1/users/alice/access-passes", json=body,
                          headers={"Authorization": f"Bearer {stack.api_key}"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


@pytest.mark.parametrize("fields", [
    {},  # neither code nor pass
    {"code": "QG1:ABCD", "access_pass": "7K3M-Q9XD-2HVA-RT0E"},
    {"access_pass": "7K3M-Q9XD-2HVA-RT0E", "password": "correct horse battery"},
    {"access_pass": "7K3M-Q9XD-2HVA-RT0E", "confirm_code": "12345678"},
    {"access_pass": "7K3M-Q9XD"},
    {"access_pass": "7K3M/Q9XD/2HVA/RT0E"},
    {"access_pass": 12345678901234567},
])
def test_bad_enrolment_requests_are_422(stack: Stack, fields: dict[str, Any]) -> None:
    phone = stack.phone()
    body = {"public_key": "A" * 87, **fields}
    response = phone._signed("POST", "/v1/devices", body, device_id="new")
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


def set_frozen(stack: Stack, frozen: bool, login: str = "alice") -> None:
    with stack.rt.engine.begin() as conn:
        user = directory.find_user(conn, org_id=1, login=login)
        directory.set_frozen(conn, user_id=user.id, frozen=frozen, now=stack.clock())


def test_a_frozen_user_gets_no_pass_and_cannot_use_one(stack: Stack) -> None:
    issued = stack.rp.issue_access_pass("alice")
    set_frozen(stack, True)
    assert refused(stack.rp.issue_access_pass, "alice") == (423, "frozen")
    assert refused(stack.phone().enrol_with_pass, issued["access_pass"]) == (423, "frozen")
    set_frozen(stack, False)  # the refusal did not use the pass up
    stack.phone().enrol_with_pass(issued["access_pass"])


# --- what is stored, audited, reported and logged ---------------------------------------


def test_only_a_keyed_digest_of_the_pass_is_stored(stack: Stack) -> None:
    issued = stack.rp.issue_access_pass("alice")
    phone = stack.phone()
    phone.enrol_with_pass(issued["access_pass"])
    with stack.rt.read() as conn:
        row = conn.execute(select(access_passes)).one()
    stored = normalise_pass(issued["access_pass"])
    assert stored is not None and row.id == issued["access_pass_id"]
    assert row.pass_hash == stack.rt.digests.digest(stored, purpose="access_pass")
    assert stored.encode() not in row.pass_hash
    assert (row.issued_by, row.revoke_devices, row.used_at, row.device_id) == (
        "relying_party", True, stack.clock(), phone.device_id)
    assert row.app_id is not None


def test_issue_and_redemption_are_audited(stack: Stack) -> None:
    lost = stack.enrolled_phone()
    issued = stack.rp.issue_access_pass("alice")
    new = stack.phone()
    new.enrol_with_pass(issued["access_pass"])
    refused(stack.phone().enrol_with_pass, issued["access_pass"])
    refused(stack.phone().enrol_with_pass, "0000-0000-0000-0000")
    with stack.rt.read() as conn:
        alice = directory.find_user(conn, org_id=1, login="alice")
        issue = search_audit(conn, event="device.access_pass_issue")
        enrols = search_audit(conn, event="device.enrol")
        unbinds = search_audit(conn, event="device.unbind")
    assert [(e["reason"], e["user_id"], e["org_id"]) for e in issue] == [
        ("issued", alice.id, 1)]
    assert issue[0]["detail"]["access_pass_id"] == issued["access_pass_id"]
    # Newest first: the unknown pass, the pass used again, the binding, the lost phone's.
    assert [(e["reason"], e["user_id"], e["device_id"]) for e in enrols] == [
        ("access_pass_not_found", None, None),
        ("access_pass_used", alice.id, None),
        ("bound_by_access_pass", alice.id, new.device_id),
        ("bound", alice.id, lost.device_id),
    ]
    assert enrols[2]["detail"] == {"access_pass_id": issued["access_pass_id"],
                                   "unbound_devices": [lost.device_id]}
    assert unbinds == []  # the replacement is the enrolment's own entry
    assert issued["access_pass"] not in repr(issue + enrols)
    assert str(normalise_pass(issued["access_pass"])) not in repr(issue + enrols)


def test_the_relying_party_hears_of_the_new_and_the_old_phone(stack_factory: Any) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    stack.rp.set_webhook("http://127.0.0.1:9/hooks")
    lost = stack.enrolled_phone()
    spare = stack.enrolled_phone(name="spare")
    issued = stack.rp.issue_access_pass("alice")
    new = stack.phone("new phone")
    new.enrol_with_pass(issued["access_pass"])
    with stack.rt.read() as conn:
        events = [(row.type, row.data["device_id"], row.data["by"]) for row in conn.execute(
            select(webhook_events).where(webhook_events.c.created_at == stack.clock())
            .order_by(webhook_events.c.type, webhook_events.c.data["device_id"].as_string()))]
    assert sorted(events) == sorted([
        ("device.added", lost.device_id, "device"),
        ("device.added", spare.device_id, "device"),
        ("device.added", new.device_id, "device"),
        ("device.removed", lost.device_id, "access_pass"),
        ("device.removed", spare.device_id, "access_pass"),
    ])


def test_the_pass_reaches_no_log_line(stack: Stack, caplog: pytest.LogCaptureFixture,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.DEBUG):
        issued = stack.rp.issue_access_pass("alice")
        stack.phone().enrol_with_pass(issued["access_pass"])
        refused(stack.phone().enrol_with_pass, issued["access_pass"])
        stack.clock.advance(MAX_TTL)
    out, err = capfd.readouterr()
    stored = normalise_pass(issued["access_pass"])
    assert stored is not None
    logged = "\n".join([caplog.text, out, err])
    assert "access_pass_used" in caplog.text  # the refusal was logged, without the pass
    for secret in (issued["access_pass"], stored, stored.lower()):
        assert secret not in logged


# --- two nodes, one pass ---------------------------------------------------------------


def test_a_pass_sent_to_two_nodes_at_once_binds_one_phone(stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    for _ in range(3):
        issued = first.rp.issue_access_pass("alice")
        phones = [first.phone("on first"), PhoneSimulator(second.base_url, clock=second.clock)]
        second.closers.append(phones[1].close)
        typed = str(issued["access_pass"])
        results = race([lambda p=phone, t=typed: p.enrol_with_pass(t) for phone in phones])
        bound = [r for r in results if isinstance(r, dict)]
        assert len(bound) == 1, results
        assert [(r.status, r.code) for r in results if isinstance(r, ApiError)] == [
            (409, "access_pass_used")]
        # The one new phone replaced the one of the round before.
        assert [d for d, status in devices_of(first).items() if status == "active"] == [
            bound[0]["device_id"]]
