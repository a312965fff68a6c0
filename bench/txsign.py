"""Scheme E throughput: N concurrent simulated users signing transactions with OCRA tokens.

Each signed transaction: the transaction platform starts it (API key), the user's software
token reads the signed challenge code (signature checked offline) and computes the OCRA
response (client CPU, timed as its own step), and the platform posts the response, which
must come back ``signed`` with a chain code. Prints signed transactions/s and p50/p99/max
latency per step.

    .venv/bin/python bench/txsign.py                   # spawns a throwaway server (SQLite)
    .venv/bin/python bench/txsign.py --users 32 --seconds 20 --workers 2
    .venv/bin/python bench/txsign.py --chain --png
    .venv/bin/python bench/txsign.py --url http://127.0.0.1:8000 --api-key qgk_...

With ``--url`` the server must be running and the API key's application must exist; the
bench creates its own users (``bench-<run>-<n>``) and enrols and activates one token for
each first (setup, not measured). ``--chain`` makes every second transaction of a user
continue the chain of the one before (``parent_code`` = its chain code), so the chained
start (chain code verified, parent checked) and respond (two-link chain code issued) are
measured too; the table then also shows the chained transactions on their own
(``+chain`` rows). ``--png`` makes every token fetch the challenge QR image and decode it
with zxing-cpp, as a camera would (the ``scan`` step; off by default: the start response
carries the code text).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict

import aiohttp
from common import Http, options, print_latencies, spawned_server

from qrgate.clients.token import SoftToken
from qrgate.core.keyring import PublicKeySet
from qrgate.qrimage import decode_image
from qrgate.txsign.tokens import activation_question, read_enrolment_code

STEPS = ("start", "scan", "sign", "respond")


async def enrol(http: Http, api: dict[str, str], keys: PublicKeySet, login: str) -> SoftToken:
    """A user with an active token. The enrolment code is read as the phone would (signature
    checked offline); the activation is posted here with aiohttp rather than by
    ``SoftToken.enrol``, which posts to the server URL inside the code (the server's
    public URL, not necessarily the one benchmarked)."""
    await http.call("POST", "/v1/users", json_body={"login": login}, headers=api)
    enrolment = await http.call("POST", "/v1/txsign/tokens", json_body={"login": login},
                                headers=api)
    read = read_enrolment_code(enrolment["code"], keys=keys, now=time.time())
    token = SoftToken(token_id=read.token_id, secret=read.secret, suite=read.suite,
                      counter=read.counter, server_url=http.base_url, login=read.login,
                      server_keys=keys)
    response = token._respond(activation_question(token.token_id))
    activated = await http.call("POST", f"/v1/txsign/tokens/{token.token_id}/activate",
                                json_body={"response": response})
    if activated["status"] != "active":
        raise RuntimeError(f"token {token.token_id} is {activated['status']}")
    return token


async def transaction(http: Http, api: dict[str, str], token: SoftToken, png: bool,
                      parent_code: str | None, timings: dict[str, list[float]]) -> str:
    """One signed transaction; returns its chain code."""
    body = {"account": token.login, "demand": "transfer 25.00 EUR to ACME",
            "comment": "benchmark transfer"}
    if parent_code is not None:
        body["parent_code"] = parent_code
    t0 = time.perf_counter()
    started = await http.call("POST", "/v1/txsign/transactions", headers=api, json_body=body)
    t1 = time.perf_counter()
    transaction_id = started["transaction_id"]
    code = started["challenge_code"]
    if png:
        image = await http.call("GET", f"/v1/txsign/transactions/{transaction_id}/challenge.png",
                                headers=api, raw=True)
        code = decode_image(image)[0].text
    t2 = time.perf_counter()
    response = token.sign(code)
    t3 = time.perf_counter()
    signed = await http.call("POST", f"/v1/txsign/transactions/{transaction_id}/response",
                             headers=api, json_body={"response": response})
    t4 = time.perf_counter()
    if signed["state"] != "signed" or not signed["chain_code"]:
        raise RuntimeError(f"transaction ended {signed['state']} ({signed['reason']})")
    if parent_code is not None and signed["parent_id"] is None:
        raise RuntimeError("a chained transaction came back without its parent")
    durations = {"start": t1 - t0, "sign": t3 - t2, "respond": t4 - t3, "tx": t4 - t0}
    if png:
        durations["scan"] = t2 - t1
    for step, seconds in durations.items():
        timings[step].append(seconds)
        if parent_code is not None:
            timings[f"{step}+chain"].append(seconds)
    return signed["chain_code"]


async def run(url: str, api_key: str, users: int, seconds: float, warmup: float,
              png: bool, chain: bool) -> None:
    api = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=users * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        http = Http(url, session)
        keys = PublicKeySet.from_jwks(await http.call("GET", "/v1/keys"))
        run_id = secrets.token_hex(3)
        tokens = await asyncio.gather(*(enrol(http, api, keys, f"bench-{run_id}-{n}")
                                        for n in range(users)))
        timings: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        measuring = False
        stop_at = time.monotonic() + warmup + seconds

        async def user(token: SoftToken) -> None:
            previous: str | None = None
            while time.monotonic() < stop_at:
                sink = timings if measuring else defaultdict(list)
                try:
                    code = await transaction(http, api, token, png, previous, sink)
                except Exception as error:
                    errors.append(str(error))
                    previous = None
                    continue
                # --chain: the next transaction continues this one, the one after starts anew.
                previous = code if chain and previous is None else None

        tasks = [asyncio.create_task(user(t)) for t in tokens]
        await asyncio.sleep(warmup)
        measuring = True
        measured_from = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - measured_from
    report(timings, errors, elapsed, users, png, chain)


def report(timings: dict[str, list[float]], errors: list[str], elapsed: float,
           users: int, png: bool, chain: bool) -> None:
    signed = len(timings["tx"])
    chained = f" ({len(timings['tx+chain'])} chained)" if chain else ""
    per_tx = 3 if png else 2
    print(f"users {users}, measured {elapsed:.1f} s, {signed} signed transactions{chained}, "
          f"{len(errors)} errors")
    print(f"throughput: {signed / elapsed:.0f} signed transactions/s "
          f"({signed * per_tx / elapsed:.0f} requests/s)")
    rows = [*STEPS, "tx"]
    if chain:
        rows += [f"{step}+chain" for step in rows]
    print_latencies(timings, rows, errors)


def main() -> None:
    parser = options(__doc__.split("\n\n")[0])
    parser.add_argument("--png", action="store_true", help="tokens decode the challenge PNG")
    parser.add_argument("--chain", action="store_true",
                        help="every second transaction continues the previous one's chain")
    args = parser.parse_args()
    if args.url:
        if not args.api_key:
            parser.error("--api-key (or QRGATE_BENCH_API_KEY) is needed with --url")
        asyncio.run(run(args.url, args.api_key, args.users, args.seconds, args.warmup,
                        args.png, args.chain))
        return
    with spawned_server(args.workers) as (url, api_key):
        asyncio.run(run(url, api_key, args.users, args.seconds, args.warmup, args.png,
                        args.chain))


if __name__ == "__main__":
    main()
