"""This machine's names on the LAN (qrgate.lan): which hosts are wildcards or loopback, and
which addresses a phone could reach."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from qrgate import lan


@pytest.mark.parametrize(("host", "wildcard", "loopback"), [
    ("0.0.0.0", True, False), ("::", True, False), ("[::]", True, False),
    ("127.0.0.1", False, True), ("127.1.2.3", False, True), ("::1", False, True),
    ("[::1]", False, True), ("localhost", False, True), ("LocalHost", False, True),
    ("app.localhost", False, True), ("192.168.1.5", False, False),
    ("fd00::2", False, False), ("qrgate.example", False, False),
])
def test_kinds_of_host(host: str, wildcard: bool, loopback: bool) -> None:
    assert lan.is_wildcard(host) is wildcard
    assert lan.is_loopback(host) is loopback


def test_addresses_the_route_first_without_unreachable_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lan, "_routed_source_address", lambda: "192.168.1.20")

    def getaddrinfo(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0)) for address in
                ("127.0.1.1", "169.254.3.4", "10.0.0.7", "192.168.1.20", "0.0.0.0")]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert lan.lan_ipv4_addresses() == ("192.168.1.20", "10.0.0.7")


def test_no_network_no_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unroutable(socket.socket):
        def connect(self, address: Any) -> None:
            raise OSError(101, "Network is unreachable")

    def unresolvable(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "socket", Unroutable)
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    assert lan.lan_ipv4_addresses() == ()
