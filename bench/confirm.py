"""Scheme C throughput: N concurrent simulated users through the whole flow.

Each flow: the relying party starts a confirmation (API key), the user's phone scans the code
(signed device request), approves it (signed), and the browser reads the result. Prints
flows/s and p50/p99 latency per step.

    .venv/bin/python bench/confirm.py                  # spawns a throwaway server (SQLite)
    .venv/bin/python bench/confirm.py --users 32 --seconds 20 --workers 2
    .venv/bin/python bench/confirm.py --url http://127.0.0.1:8000 --api-key qgk_...

With ``--url`` the server must be running and the API key's application must exist; the
bench creates its own users (``bench-<run>-<n>``) and binds a phone to each first.
``--png`` makes every phone fetch the QR image and decode it with zxing-cpp, as a camera
would (off by default: the start response carries the code text, as for a page that renders
its own QR).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import aiohttp
from common import Http, measured, options, print_latencies, spawned_server
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    public_key_bytes,
    sign_request,
)
from qrgate.qrimage import decode_image

STEPS = ("start", "scan", "approve", "result")


class Phone:
    def __init__(self, login: str) -> None:
        self.login = login
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.device_id = "new"

    def signed(self, method: str, path: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body, separators=(",", ":")).encode()
        now = int(time.time())
        signature = sign_request(private_key=self.key, method=method, path=path, timestamp=now,
                                 device_id=self.device_id, body=raw)
        return raw, {DEVICE_HEADER: self.device_id, TIMESTAMP_HEADER: str(now),
                     SIGNATURE_HEADER: signature, "content-type": "application/json"}


async def enrol(http: Http, api: dict[str, str], login: str) -> Phone:
    password = secrets.token_urlsafe(12)
    await http.call("POST", "/v1/users", json_body={"login": login, "password": password},
                    headers=api)
    enrolment = await http.call("POST", f"/v1/users/{login}/enrolments", headers=api)
    phone = Phone(login)
    public = base64.urlsafe_b64encode(public_key_bytes(phone.key.public_key())).rstrip(b"=")
    raw, headers = phone.signed("POST", "/v1/devices", {
        "code": enrolment["code"], "public_key": public.decode(), "password": password})
    device = await http.call("POST", "/v1/devices", content=raw, headers=headers)
    phone.device_id = device["device_id"]
    return phone


async def flow(http: Http, api: dict[str, str], phone: Phone, png: bool,
               timings: dict[str, list[float]]) -> None:
    t0 = time.perf_counter()
    started = await http.call("POST", "/v1/confirm/challenges", headers=api, json_body={
        "login": phone.login,
        "scene": {"operation": "transfer", "amount": "25.00", "currency": "EUR",
                  "source": "bench", "content": "benchmark transfer"},
        "requester": {"ip": "198.51.100.7", "user_agent": "bench"},
    })
    t1 = time.perf_counter()
    browser = {"Qrgate-Browser-Token": started["browser_token"]}
    challenge = f"/v1/confirm/challenges/{started['challenge_id']}"
    code = started["code"]
    if png:
        image = await http.call("GET", f"{challenge}/qr.png", headers=browser, raw=True)
        code = decode_image(image)[0].text
    raw, headers = phone.signed("POST", "/v1/confirm/scan", {"code": code})
    await http.call("POST", "/v1/confirm/scan", content=raw, headers=headers)
    t2 = time.perf_counter()
    body = {"decision": "approve"}
    if started["number"] is not None:
        body["number"] = started["number"]
    raw, headers = phone.signed("POST", f"{challenge}/decision", body)
    await http.call("POST", f"{challenge}/decision", content=raw, headers=headers)
    t3 = time.perf_counter()
    result = await http.call("GET", challenge, headers=browser)
    t4 = time.perf_counter()
    if result["state"] != "approved":
        raise RuntimeError(f"flow ended {result['state']}")
    for step, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
        timings[step].append(seconds)
    timings["flow"].append(t4 - t0)


async def run(url: str, api_key: str, users: int, seconds: float, warmup: float,
              png: bool) -> None:
    api = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=users * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        http = Http(url, session)
        run_id = secrets.token_hex(3)
        phones = await asyncio.gather(*(enrol(http, api, f"bench-{run_id}-{n}")
                                        for n in range(users)))
        timings, errors, elapsed = await measured(
            phones, lambda phone, sink: flow(http, api, phone, png, sink),
            warmup=warmup, seconds=seconds)
    report(timings, errors, elapsed, users)


def report(timings: dict[str, list[float]], errors: list[str], elapsed: float,
           users: int) -> None:
    flows = len(timings["flow"])
    print(f"users {users}, measured {elapsed:.1f} s, {flows} complete flows, "
          f"{len(errors)} errors")
    print(f"throughput: {flows / elapsed:.0f} flows/s ({flows * 4 / elapsed:.0f} requests/s)")
    print_latencies(timings, (*STEPS, "flow"), errors)


def main() -> None:
    parser = options(__doc__.split("\n\n")[0])
    parser.add_argument("--png", action="store_true", help="phones decode the QR PNG")
    args = parser.parse_args()
    if args.url:
        if not args.api_key:
            parser.error("--api-key (or QRGATE_BENCH_API_KEY) is needed with --url")
        asyncio.run(run(args.url, args.api_key, args.users, args.seconds, args.warmup, args.png))
        return
    with spawned_server(args.workers, policy='{"number_matching": "always"}') as (url, api_key):
        asyncio.run(run(url, api_key, args.users, args.seconds, args.warmup, args.png))


if __name__ == "__main__":
    main()
