"""What the benchmark scripts share: the load generator's HTTP client, a throwaway server,
the common options and the latency table. Imported by scripts run as ``python bench/X.py``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import aiohttp
import httpx


class Http:
    """The load generator's client: aiohttp, because httpx's async pool spent ~2 ms of CPU
    per request at 32 connections here, making the bench measure itself."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                   json_body: Any = None, content: bytes | None = None,
                   raw: bool = False) -> Any:
        data = content if json_body is None else json.dumps(json_body).encode()
        all_headers = dict(headers or {})
        if json_body is not None:
            all_headers["content-type"] = "application/json"
        async with self.session.request(method, self.base_url + path, data=data,
                                        headers=all_headers) as response:
            body = await response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:200]!r}")
            if raw:
                return body
            return json.loads(body) if body else None


User = TypeVar("User")
Timings = dict[str, list[float]]


async def measured(users: Sequence[User], step: Callable[[User, Timings], Awaitable[None]], *,
                   warmup: float, seconds: float) -> tuple[Timings, list[str], float]:
    """Every user runs ``step`` in a loop, ``warmup`` seconds unmeasured, then ``seconds``
    measured: the measured timings, the errors (counted and shown: a bench reports, it
    never stops) and the measured time."""
    timings: Timings = defaultdict(list)
    errors: list[str] = []
    measuring = False
    stop_at = time.monotonic() + warmup + seconds

    async def run(user: User) -> None:
        while time.monotonic() < stop_at:
            try:
                await step(user, timings if measuring else defaultdict(list))
            except Exception as error:
                errors.append(str(error))

    tasks = [asyncio.create_task(run(user)) for user in users]
    await asyncio.sleep(warmup)
    measuring = True
    measured_from = time.monotonic()
    await asyncio.gather(*tasks)
    return timings, errors, time.monotonic() - measured_from


def options(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", help="a running server; without it one is spawned")
    parser.add_argument("--api-key", default=os.environ.get("QRGATE_BENCH_API_KEY"))
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=1, help="server workers when spawned")
    return parser


def print_latencies(timings: dict[str, list[float]], rows: Sequence[str],
                    errors: list[str]) -> None:
    width = max(8, *(len(row) for row in rows))
    print(f"{'step':<{width}} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for step in rows:
        values = sorted(timings[step])
        if not values:
            continue
        p50 = statistics.median(values) * 1000
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
        print(f"{step:<{width}} {p50:8.1f} {p99:8.1f} {values[-1] * 1000:8.1f}")
    for message in sorted(set(errors))[:5]:
        print(f"error: {message}")


@contextmanager
def spawned_server(workers: int, *, policy: str = "{}") -> Iterator[tuple[str, str]]:
    """A throwaway server on SQLite in a temporary data directory, provisioned by the CLI."""
    with tempfile.TemporaryDirectory(prefix="qrgate-bench-") as data_dir:
        port = 18_000 + secrets.randbelow(2000)
        env = {**os.environ, "QRGATE_DATA_DIR": data_dir, "QRGATE_PORT": str(port),
               "QRGATE_LOG_LEVEL": "warning"}
        qrgate = [sys.executable, "-m", "qrgate.cli"]
        for args in (["org", "create", "bench", "--name", "Bench"],
                     ["app", "create", "--org", "bench", "--business-id", "web",
                      "--name", "Bench", "--policy", policy]):
            subprocess.run([*qrgate, "admin", *args], env=env, check=True, capture_output=True)
        api_key = subprocess.run(
            [*qrgate, "admin", "apikey", "create", "--org", "bench", "--business-id", "web"],
            env=env, check=True, capture_output=True, text=True).stdout.strip()
        server = subprocess.Popen([*qrgate, "serve", "--workers", str(workers)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
            print(f"spawned server {url} with {workers} worker(s) on SQLite")
            yield url, api_key
        finally:
            server.terminate()
            server.wait(timeout=30)
