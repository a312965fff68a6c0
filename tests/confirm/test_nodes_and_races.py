"""Several qrgate nodes on one database behave as one server (SPEC "Single use across
nodes"): a challenge started on one node finishes on another, and two approvals racing at
the same instant from separate connections on separate nodes are approved once."""

from __future__ import annotations

from typing import Any

from qrgate.clients.relying_party import ApiError
from qrgate.storage.audit import search_audit
from support.race import race
from support.stack import Stack, twin


def test_started_on_one_node_finished_on_another(stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    started, _ = first.start()
    on_second = twin(phone, second)
    on_second.scan_text(started["code"])
    assert on_second.decide(started["challenge_id"], approve=True)["state"] == "approved"
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "approved"


def audited(stack: Stack, challenge_id: str, event: str) -> list[str]:
    """The reasons of the audit entries of one event of one challenge."""
    with stack.rt.read() as conn:
        return [entry["reason"] for entry in search_audit(conn, challenge_id=challenge_id,
                                                          event=event)]


def decisions_racing(stack_factory: Any, *, other_approves: bool
                     ) -> tuple[Stack, list[tuple[str, list[Any]]]]:
    """Five scanned challenges, each decided at the same instant by one phone on two
    nodes: an approval on the first, and an approval or a denial on the second."""
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    other = twin(phone, second)
    results = []
    for _ in range(5):
        started, _ = first.start()
        phone.scan_text(started["code"])
        challenge_id = started["challenge_id"]
        results.append((challenge_id, race([
            lambda cid=challenge_id: phone.decide(cid, approve=True),
            lambda cid=challenge_id: other.decide(cid, approve=other_approves),
        ])))
    return first, results


def test_the_same_approval_on_two_nodes_at_once_is_taken_once(stack_factory: Any) -> None:
    """A client retry (or copies of one request on two nodes): both get the same answer,
    the decision is taken and audited once."""
    first, results = decisions_racing(stack_factory, other_approves=True)
    for challenge_id, answers in results:
        assert [r["state"] for r in answers] == ["approved", "approved"], answers
        assert audited(first, challenge_id, "confirm.approve") == ["approved"]


def test_approve_and_deny_at_the_same_instant_one_wins(stack_factory: Any) -> None:
    first, results = decisions_racing(stack_factory, other_approves=False)
    for challenge_id, answers in results:
        wins = [r for r in answers if isinstance(r, dict)]
        losses = [r for r in answers if isinstance(r, ApiError)]
        assert len(wins) == 1 and [e.code for e in losses] == ["already_decided"], answers
        assert first.rp.get_challenge(challenge_id)["state"] == wins[0]["state"]


def test_the_same_scan_on_two_nodes_at_once_scans_once(stack_factory: Any) -> None:
    """A scan repeated by the same device is its retry, not a relayed code."""
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    other = twin(phone, second)
    started, _ = first.start()
    results = race([lambda: phone.scan_text(started["code"]),
                    lambda: other.scan_text(started["code"])])
    assert [r["challenge_id"] for r in results] == [started["challenge_id"]] * 2, results
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "scanned"
    assert audited(first, started["challenge_id"], "confirm.scan") == ["scanned"]


def test_two_devices_scanning_at_the_same_instant_kill_the_challenge(
        stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    other_phone = twin(first.enrolled_phone(name="second phone"), second)
    started, _ = first.start()
    results = race([lambda: phone.scan_text(started["code"]),
                    lambda: other_phone.scan_text(started["code"])])
    assert sum(isinstance(r, dict) for r in results) == 1
    (loss,) = [r for r in results if isinstance(r, ApiError)]
    assert loss.code == "scanned_twice"
    # A code scanned twice kills the challenge, whoever was first.
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "rejected"
