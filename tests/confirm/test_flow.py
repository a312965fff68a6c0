"""Scheme C end to end over HTTP: real server, real database, phones decoding real PNGs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from qrgate.clients.phone import decode_png
from qrgate.clients.relying_party import ApiError
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.qrimage import decode_image
from support.stack import Stack


def test_whole_flow_from_binding_to_pushed_result(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice", amount="2500.00", source="web/transfers",
                                   content="to Bob, invoice 42", number_matching=True)
    assert started["state"] == "pending" and started["verifier"] == "qr"
    assert 10 <= started["number"] <= 99

    events: list[dict[str, Any]] = []
    listener = threading.Thread(target=lambda: events.extend(browser.events()))
    listener.start()

    png = browser.qr_png()
    (decoded,) = decode_image(png)
    assert decoded.text == started["code"] and decoded.version <= 10

    context = phone.scan_png(png)
    assert context["challenge_id"] == started["challenge_id"]
    assert context["operation"] == "transfer"
    assert context["scene"]["amount"] == "2500.00 EUR"
    assert context["scene"]["content"] == "to Bob, invoice 42"
    assert context["service"] == {"organisation": "Example Bank", "application": "Web banking",
                                  "business_id": "web", "origin": "https://bank.example"}
    assert context["requester"] == {"ip": "198.51.100.20", "user_agent": "Firefox on Linux",
                                    "place": "unknown"}
    assert context["number_matching"] is True
    assert "number" not in context  # the phone must learn the number from the browser
    assert browser.status()["state"] == "scanned"

    result = phone.decide(started["challenge_id"], approve=True, number=started["number"])
    assert result["state"] == "approved" and result["reason"] == "approved"
    listener.join(timeout=10)
    assert not listener.is_alive()
    assert events[0]["state"] in ("pending", "scanned")
    assert events[-1]["state"] == "approved"
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "approved"

    # 609: both sides keep a searchable history.
    assert [h["challenge_id"] for h in stack.rp.history(q="bob")] == [started["challenge_id"]]
    assert [h["challenge_id"] for h in phone.history(q="invoice")] == [started["challenge_id"]]
    assert phone.history(q="nothing-like-this") == []
    assert stack.rp.history(login="bob") == []


def test_deny_reaches_the_browser_by_polling(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=False)
    status = browser.wait_result(timeout=5)
    assert status["state"] == "denied" and status["reason"] == "denied_by_user"


def test_policy_routes_number_matching_by_amount(stack_factory: Any) -> None:
    stack = stack_factory(AppPolicy(number_matching=NumberMatching.RISK))
    stack.enrolled_phone("alice")
    small, _ = stack.start("alice", amount="10.00")
    large, _ = stack.start("alice", amount="5000.00")
    login, _ = stack.start("alice", operation="login", amount=None, currency=None)
    assert small["number"] is None
    assert large["number"] is not None and login["number"] is not None


def test_several_devices_per_user_and_unbinding(stack: Stack) -> None:
    first = stack.enrolled_phone("alice", name="first")
    second = stack.enrolled_phone("alice", name="second")
    devices = stack.rp.list_devices("alice")
    assert {d["name"] for d in devices} == {"first", "second"}

    started, _ = stack.start("alice")
    second.scan_text(started["code"])
    assert second.decide(started["challenge_id"], approve=True)["state"] == "approved"

    stack.rp.unbind_device("alice", second.device_id or "")
    first.unbind()
    assert {d["status"] for d in stack.rp.list_devices("alice")} == {"unbound"}
    # With no bound device left, the QR verifier is not available for alice.
    with pytest.raises(ApiError) as caught:
        stack.start("alice")
    assert (caught.value.status, caught.value.code) == (409, "verifier_unavailable")


def test_rotation_replaces_the_code_on_screen(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    rotated = browser.rotate()
    assert rotated["code"] != started["code"]
    assert decode_png(browser.qr_png()) == rotated["code"]
    error = _api_error(lambda: phone.scan_text(started["code"]))
    assert (error.status, error.code) == (410, "code_superseded")
    assert phone.scan_text(rotated["code"])["challenge_id"] == started["challenge_id"]


def _api_error(action: Any) -> Any:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value
