"""Where a webhook may point: the check of its URL when it is set, and of every address its
host resolves to when an event is sent (server-side request forgery: a relying party must
not make qrgate post into the network it runs in).

- ``https`` only, with a host name or a public IP address; no user name or password in the
  URL (it would be stored and shown), no fragment.
- Every address the host resolves to, at each attempt, must be public (``is_global``):
  loopback, private, link-local (cloud metadata services live there), multicast and
  reserved addresses are refused, so a name that resolves inwards (or is switched to, DNS
  rebinding) reaches nothing. The address checked is the address connected to.
- ``QRGATE_WEBHOOK_ALLOW_PRIVATE``: private networks too (RFC 1918, shared address space,
  unique local IPv6), for deployments whose relying parties run on an internal network.
- ``QRGATE_WEBHOOK_ALLOW_LOOPBACK``: this machine too, over http as well (``localhost``,
  127.0.0.0/8, ::1): for tests and local development only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from qrgate.errors import InvalidField

MAX_URL_LENGTH: Final = 300
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses that are not global but belong to some organisation's own network.
PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# A DNS host name: dot-separated labels of letters, digits and inner hyphens.
_HOST_NAME: Final = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*",
    re.ASCII)
_LOOPBACK_NAMES: Final = ("localhost", "localhost.")


def _refused(why: str) -> InvalidField:
    return InvalidField(f"webhook URL refused: {why}", code="bad_webhook_url")


@dataclass(frozen=True, kw_only=True)
class DestinationPolicy:
    allow_loopback: bool = False
    allow_private: bool = False

    def address_allowed(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback:
            return self.allow_loopback
        if any(address in network for network in PRIVATE_NETWORKS):
            return self.allow_private
        return address.is_global and not address.is_multicast

    def check_url(self, url: str) -> str:
        """The URL as given, if it may be a webhook's; else ``bad_webhook_url`` saying why."""
        if len(url) > MAX_URL_LENGTH or not url.isascii() or not url.isprintable() or (
                " " in url):
            raise _refused(f"at most {MAX_URL_LENGTH} printable ASCII characters, no spaces")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise _refused("it does not parse as a URL") from None
        if parts.username is not None or parts.password is not None:
            raise _refused("no user name or password in the URL: the signature proves "
                           "who sends")
        if parts.fragment or url.endswith("#"):
            raise _refused("no fragment")
        if port == 0:
            raise _refused("port 0")
        host = (parts.hostname or "").lower()
        if not host:
            raise _refused("no host")
        loopback = self._host_is_loopback(host)
        if parts.scheme.lower() == "http":
            if not loopback:
                raise _refused("https only (http only to this machine, with "
                               "QRGATE_WEBHOOK_ALLOW_LOOPBACK)")
        elif parts.scheme.lower() != "https":
            raise _refused("https only")
        return url

    def _host_is_loopback(self, host: str) -> bool:
        """Whether ``host`` names this machine; refuses a host no delivery could reach."""
        try:
            address: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if not self.address_allowed(address):
                raise _refused(f"{host} is not a public address")
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            return (mapped or address).is_loopback
        if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
            if not self.allow_loopback:
                raise _refused(f"{host} is this machine")
            return True
        if not _HOST_NAME.fullmatch(host):
            raise _refused("the host is not a valid name or address")
        return False
