"""This machine's names on its local network: the address a phone on the same network uses
to reach ``qrgate serve``, and the names a development certificate must carry.

No packet is sent: the primary address is the source address the kernel picks for a route
out of this machine (connecting a UDP socket only looks the route up), and the others come
from resolving the host name. A machine with no network has no LAN address; callers fall
back to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

# Binding to these means "every interface": a URL must name one real address instead.
WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104
# TEST-NET-1 (RFC 5737): never answers, but routing to it picks the default route's source.
_ROUTE_PROBE: Final = ("192.0.2.1", 9)


def is_wildcard(host: str) -> bool:
    return host.strip() in WILDCARD_HOSTS


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: a name only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def hostname() -> str:
    return socket.gethostname()


def lan_ipv4_addresses() -> tuple[str, ...]:
    """This machine's IPv4 addresses that another machine could reach, the one the default
    route uses first; loopback, link-local and unspecified addresses are left out."""
    found: list[str] = []
    primary = _routed_source_address()
    if primary is not None:
        found.append(primary)
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET,
                                   socket.SOCK_STREAM)
    except OSError:
        infos = []
    for *_, sockaddr in infos:
        found.append(str(sockaddr[0]))
    usable = [address for address in found if _reachable(address)]
    return tuple(dict.fromkeys(usable))


def _routed_source_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE)
            return str(probe.getsockname()[0])
    except OSError:  # no route: no network
        return None


def _reachable(address: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)
