"""What the phone is shown after a scan: the service, the operation, and where the request
came from, told coarsely and honestly (``verification.describe_place``: no GeoIP here).
Found unpinned by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import pytest

from support.stack import Stack


@pytest.mark.parametrize(("ip", "place"), [
    ("127.0.0.1", "this computer"),
    ("::1", "this computer"),
    ("192.168.1.20", "local network"),
    ("10.1.2.3", "local network"),
    ("fe80::1", "local network"),
    ("8.8.8.8", "internet"),
    ("2001:4860:4860::8888", "internet"),
    ("198.51.100.20", "unknown"),  # a documentation range: neither here nor the internet
])
def test_the_phone_is_told_where_the_request_came_from(stack: Stack, ip: str,
                                                       place: str) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start(requester_ip=ip)
    shown = phone.scan_text(started["code"])
    assert shown["requester"] == {"ip": ip, "user_agent": "Firefox on Linux", "place": place}
    assert shown["service"]["business_id"] == "web"
    assert shown["operation"] == "transfer"
