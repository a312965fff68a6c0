"""The pure parts of webhooks: Standard Webhooks signatures (the published vector, and the
reference library verifying what qrgate signs), the body, the retry schedule and the
check of destination URLs and addresses."""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from qrgate.config import DEFAULT_WEBHOOK_RETRIES
from qrgate.errors import QrgateError
from qrgate.webhooks import signing
from qrgate.webhooks.destinations import DestinationPolicy
from qrgate.webhooks.retry import Outcome, next_delay, parse_retry_after

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "standard_webhooks.json")
                     .read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["msg_id"])
def test_signature_matches_the_published_vector(vector: dict[str, Any]) -> None:
    key = base64.b64decode(vector["secret"].removeprefix("whsec_"))
    assert signing.signature(key, msg_id=vector["msg_id"], timestamp=vector["timestamp"],
                             payload=vector["payload"].encode()) == vector["signature"]


def test_the_reference_library_verifies_what_qrgate_signs() -> None:
    key = signing.new_key(bytes(range(32)))
    secret = signing.secret_text(key)
    assert secret.startswith("whsec_") and base64.b64decode(secret[6:]) == key
    now = int(datetime.now(UTC).timestamp())
    body = signing.body(event_type="confirm.approved", occurred_at=1_800_000_000.25,
                        data={"challenge_id": "ab" * 16, "login": "alice"})
    headers = signing.headers([key], msg_id="cd" * 16, timestamp=now, payload=body)
    assert Webhook(secret).verify(body.decode(), headers) == {
        "type": "confirm.approved", "timestamp": "2027-01-15T08:00:00.250Z",
        "data": {"challenge_id": "ab" * 16, "login": "alice"}}
    # One byte of the body changed, another key, or another id: refused.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.decode().replace("alice", "alicf"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_text(bytes(32))).verify(body.decode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.decode(), {**headers, "webhook-id": "ef" * 16})


def test_during_a_rotation_each_key_signs() -> None:
    old, new = bytes(32), bytes(range(32))
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers([new, old], msg_id="01" * 16, timestamp=now, payload=b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        Webhook(signing.secret_text(key)).verify("{}", headers)


def test_the_body_is_minified_sorted_ascii_json() -> None:
    body = signing.body(event_type="user.locked", occurred_at=0.0,
                        data={"login": "zoë", "reason": "too_many_failures"})
    assert body == (b'{"data":{"login":"zo\\u00eb","reason":"too_many_failures"},'
                    b'"timestamp":"1970-01-01T00:00:00.000Z","type":"user.locked"}')


def test_a_key_needs_32_random_bytes() -> None:
    with pytest.raises(QrgateError):
        signing.new_key(bytes(16))


# --- retries --------------------------------------------------------------------------------


def test_the_default_schedule_spans_about_a_day() -> None:
    total = sum(DEFAULT_WEBHOOK_RETRIES)
    assert 20 * 3600 <= total <= 30 * 3600
    assert list(DEFAULT_WEBHOOK_RETRIES) == sorted(DEFAULT_WEBHOOK_RETRIES)


def test_each_retry_waits_its_delay_stretched_by_at_most_a_fifth() -> None:
    retries = (5.0, 30.0)
    failed = Outcome(status=500)
    assert next_delay(attempts=1, retries=retries, outcome=failed, random_fraction=0) == 5.0
    assert next_delay(attempts=2, retries=retries, outcome=failed,
                      random_fraction=0.999) == pytest.approx(30 * 1.2, rel=1e-3)
    # The third attempt was the last.
    assert next_delay(attempts=3, retries=retries, outcome=failed, random_fraction=0) is None


def test_retry_after_is_honoured_up_to_a_day_and_410_gives_up() -> None:
    retries = (5.0, 30.0)
    busy = Outcome(status=503, retry_after=120.0)
    assert next_delay(attempts=1, retries=retries, outcome=busy, random_fraction=0) == 120.0
    forever = Outcome(status=429, retry_after=10**9)
    assert next_delay(attempts=1, retries=retries, outcome=forever,
                      random_fraction=0) == 86_400.0
    assert next_delay(attempts=1, retries=retries, outcome=Outcome(status=410),
                      random_fraction=0) is None
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


# --- destinations ---------------------------------------------------------------------------


STRICT = DestinationPolicy()
LOOPBACK = DestinationPolicy(allow_loopback=True)
PRIVATE = DestinationPolicy(allow_private=True)


@pytest.mark.parametrize("url", [
    "https://hooks.bank.example/qrgate",
    "https://hooks.bank.example:8443/qrgate?tenant=7",
    "HTTPS://Hooks.Bank.Example/",
    "https://93.184.216.34/hook",
    "https://[2606:4700::1111]/hook",
])
def test_public_https_urls_are_accepted(url: str) -> None:
    assert STRICT.check_url(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.bank.example/", "https only"),
    ("ftp://hooks.bank.example/", "https only"),
    ("https://user:pass@hooks.bank.example/", "no user name or password"),
    ("https://hooks.bank.example/#part", "no fragment"),
    ("https://localhost/hook", "this machine"),
    ("https://127.0.0.1/hook", "not a public address"),
    ("https://[::1]/hook", "not a public address"),
    ("https://[::ffff:127.0.0.1]/hook", "not a public address"),
    ("https://10.1.2.3/hook", "not a public address"),
    ("https://169.254.169.254/latest/meta-data", "not a public address"),
    ("https://0.0.0.0/hook", "not a public address"),
    ("https://224.0.0.1/hook", "not a public address"),
    ("https://hooks_bank.example/", "not a valid name"),
    ("https://hooks.bank.example:99999/", "does not parse"),
    ("https:///hook", "no host"),
    ("https://hooks.bank.example/a b", "no spaces"),
    ("https://hooks.bänk.example/", "ASCII"),
])
def test_urls_that_may_not_be_destinations_are_refused(url: str, why: str) -> None:
    with pytest.raises(QrgateError) as caught:
        STRICT.check_url(url)
    assert caught.value.code == "bad_webhook_url" and why in caught.value.detail


def test_loopback_and_private_networks_only_when_allowed() -> None:
    assert LOOPBACK.check_url("http://127.0.0.1:8080/hook")
    assert LOOPBACK.check_url("http://localhost:8080/hook")
    assert LOOPBACK.check_url("https://[::1]/hook")
    assert PRIVATE.check_url("https://10.1.2.3/hook")
    # Plain http stays for this machine alone; link-local never.
    for policy, url in ((LOOPBACK, "http://hooks.bank.example/"),
                        (PRIVATE, "http://10.1.2.3/hook"),
                        (PRIVATE, "https://127.0.0.1/hook"),
                        (LOOPBACK, "https://10.1.2.3/hook"),
                        (DestinationPolicy(allow_loopback=True, allow_private=True),
                         "https://169.254.169.254/")):
        with pytest.raises(QrgateError):
            policy.check_url(url)


@pytest.mark.parametrize(("address", "strict", "private", "loopback"), [
    ("93.184.216.34", True, True, True),
    ("127.0.0.1", False, False, True),
    ("::ffff:127.0.0.1", False, False, True),
    ("10.0.0.1", False, True, False),
    ("172.16.5.4", False, True, False),
    ("192.168.1.1", False, True, False),
    ("100.64.0.1", False, True, False),
    ("fd00::1", False, True, False),
    ("169.254.169.254", False, False, False),
    ("fe80::1", False, False, False),
    ("0.0.0.0", False, False, False),
    ("192.0.2.1", False, False, False),
    ("ff02::1", False, False, False),
])
def test_which_resolved_addresses_may_be_connected_to(
        address: str, strict: bool, private: bool, loopback: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (STRICT.address_allowed(ip), PRIVATE.address_allowed(ip),
            LOOPBACK.address_allowed(ip)) == (strict, private, loopback)
