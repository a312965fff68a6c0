"""Webhook tests run their stacks on a clock that starts at the real time: a receiver
checks ``webhook-timestamp`` against its own clock (Standard Webhooks: within 5 minutes),
and the tests move the stack's clock only a little, to bring retries due."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.stack import Clock, stack, stack_factory
from support.webhook_receiver import Receiver

__all__ = ["clock", "receiver", "stack", "stack_factory"]


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()
