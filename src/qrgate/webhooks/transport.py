"""Sending one webhook attempt: an HTTP POST that follows no redirect, gives up after
``TIMEOUT`` seconds in all, and connects only to addresses the destination policy allows.

It runs on httpcore, the transport under httpx, used directly for one reason: its network
backend is where the connection is made, so the check of the resolved addresses
(:mod:`qrgate.webhooks.destinations`) happens on the very address connected to. Checking a
name's addresses first and letting a client resolve it again would leave a window for DNS
rebinding. TLS still verifies the certificate against the URL's host name (httpcore passes
it as the server name), so connecting by address changes nothing there. httpcore never
follows redirects; a 3xx is a failed attempt, as Standard Webhooks asks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import anyio.to_thread
import httpcore

from qrgate import __version__
from qrgate.errors import QrgateError
from qrgate.webhooks.destinations import DestinationPolicy, IpAddress
from qrgate.webhooks.retry import Outcome, parse_retry_after

# The whole attempt: connecting, TLS, sending and the receiver's answer.
TIMEOUT: Final = 10.0
_PHASES: Final = {"connect": 5.0, "read": TIMEOUT, "write": TIMEOUT, "pool": TIMEOUT}
USER_AGENT: Final = f"qrgate/{__version__} (webhooks)"


class RefusedDestination(Exception):
    """The host resolves to an address the policy does not allow."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it if any address is not allowed, and connects to
    the allowed addresses in turn."""

    def __init__(self, allowed: Callable[[IpAddress], bool]) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            # In a thread that a stopping server abandons rather than waits for.
            infos = await anyio.to_thread.run_sync(
                socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM,
                abandon_on_cancel=True)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve the host ({error.strerror})") from None
        # An IPv6 address may come with its scope ("fe80::1%eth0"); the address is before.
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0])
                                       for info in infos))
        refused = [address for address in addresses if not self._allowed(address)]
        if refused or not addresses:
            raise RefusedDestination(f"the host resolves to {refused[0] if refused else 'nothing'}"
                                     ", which webhooks may not reach")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Sender:
    """Connection pools for webhook attempts: https to addresses the policy allows, plain
    http to this machine only (when loopback is allowed at all)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self.policy = policy
        tls = ssl.create_default_context()
        self._secure = httpcore.AsyncConnectionPool(
            ssl_context=tls, max_connections=20, keepalive_expiry=30.0, retries=0,
            network_backend=_GuardedBackend(policy.address_allowed))
        self._plain = httpcore.AsyncConnectionPool(
            max_connections=20, keepalive_expiry=30.0, retries=0,
            network_backend=_GuardedBackend(
                lambda address: policy.allow_loopback and _loopback(address)))

    async def close(self) -> None:
        await self._secure.aclose()
        await self._plain.aclose()

    async def post(self, url: str, *, headers: Mapping[str, str], body: bytes) -> Outcome:
        """One attempt; never raises for what the network or the receiver did."""
        try:
            # Checked again at each attempt: the settings may have changed since.
            self.policy.check_url(url)
        except QrgateError as error:
            return Outcome(error=error.detail)
        pool = self._plain if url[:5].lower() == "http:" else self._secure
        sent = [(name.encode(), value.encode()) for name, value in headers.items()]
        sent.append((b"user-agent", USER_AGENT.encode()))
        try:
            async with asyncio.timeout(TIMEOUT):
                async with pool.stream("POST", url, headers=sent, content=body,
                                       extensions={"timeout": _PHASES}) as response:
                    # The body is never read: only the status counts.
                    retry_after = next((value.decode("latin-1") for name, value
                                        in response.headers
                                        if name.lower() == b"retry-after"), None)
                    return Outcome(status=response.status,
                                   retry_after=parse_retry_after(retry_after))
        except TimeoutError:
            return Outcome(error=f"no answer within {TIMEOUT:.0f} s")
        except RefusedDestination as error:
            return Outcome(error=str(error))
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                httpcore.UnsupportedProtocol, httpcore.LocalProtocolError, ssl.SSLError,
                OSError) as error:
            return Outcome(error=_describe(error))


def _loopback(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _describe(error: BaseException) -> str:
    """A short reason for the delivery list: the error's class and first words. Messages
    of connection errors name addresses and causes, never the request's headers or body."""
    text = " ".join(str(error).split())[:120]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
