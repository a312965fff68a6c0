"""README's Webhooks section tells the truth: its verification snippet accepts what qrgate
really sends (and nothing altered), and its table names every event type there is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from qrgate.webhooks.catalogue import EventType
from support.stack import Stack
from support.webhook_receiver import Receiver, wait_until

SECTION = (Path(__file__).resolve().parents[2] / "README.md").read_text().split(
    "## Webhooks", 1)[1].split("\n## ", 1)[0]


def test_the_readme_snippet_verifies_a_real_delivery(
        stack_factory: Any, receiver: Receiver) -> None:
    (snippet,) = re.findall(r"```python\n(.*?)```", SECTION, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # the README's own code, as a relying party copies it
    verify = namespace["verify"]
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    secret = stack.rp.set_webhook(receiver.url)["secret"]
    stack.enrolled_phone("alice")
    wait_until(lambda: len(receiver.delivered()) == 1, what="the event")
    (request,) = receiver.delivered()
    assert verify(secret, request.headers, request.body)
    assert not verify(secret, request.headers, request.body.replace(b"alice", b"alicf"))
    assert not verify(secret, {**request.headers, "webhook-timestamp": "1000000000"},
                      request.body)


def test_the_readme_table_names_every_event_type() -> None:
    named = set(re.findall(r"`([a-z]+\.[a-z]+)`", SECTION.split("| type |", 1)[1]
                           .split("\n\n", 1)[0]))
    assert {event.value for event in EventType} <= named
