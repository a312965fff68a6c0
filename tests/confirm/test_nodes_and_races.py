"""Several qrgate nodes on one database behave as one server (SPEC "Single use across
nodes"): a challenge started on one node finishes on another, and two approvals racing at
the same instant from separate connections on separate nodes are approved once."""

from __future__ import annotations

from typing import Any

from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from support.race import race
from support.stack import Stack


def twin(phone: PhoneSimulator, node: Stack) -> PhoneSimulator:
    """The same phone (same device key and id) talking to another node."""
    other = PhoneSimulator(node.base_url, private_key=phone.private_key,
                           device_id=phone.device_id, server_keys=phone.server_keys,
                           clock=node.clock)
    node.closers.append(other.close)
    return other


def test_started_on_one_node_finished_on_another(stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    started, _ = first.start()
    on_second = twin(phone, second)
    on_second.scan_text(started["code"])
    assert on_second.decide(started["challenge_id"], approve=True)["state"] == "approved"
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "approved"


def test_two_approvals_at_the_same_instant_win_once(stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    other = twin(phone, second)
    for _ in range(5):
        started, _ = first.start()
        phone.scan_text(started["code"])
        challenge_id = started["challenge_id"]
        results = race([
            lambda cid=challenge_id: phone.decide(cid, approve=True),
            lambda cid=challenge_id: other.decide(cid, approve=True),
        ])
        wins = [r for r in results if isinstance(r, dict)]
        losses = [r for r in results if isinstance(r, ApiError)]
        assert len(wins) == 1 and wins[0]["state"] == "approved"
        assert [e.code for e in losses] == ["already_decided"]


def test_two_scans_at_the_same_instant_scan_once(stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    other = twin(phone, second)
    started, _ = first.start()
    results = race([lambda: phone.scan_text(started["code"]),
                    lambda: other.scan_text(started["code"])])
    assert sum(isinstance(r, dict) for r in results) == 1
    (loss,) = [r for r in results if isinstance(r, ApiError)]
    assert loss.code == "scanned_twice"
    # A code scanned twice kills the challenge, whoever was first.
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "rejected"
