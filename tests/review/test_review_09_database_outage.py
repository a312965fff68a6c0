"""Review 9: while PostgreSQL refuses connections, clients get 503 with Retry-After and a
stable code, a waiting result stream ends cleanly (the page then reconnects), the outage
is logged once rather than as a traceback per request, and everything recovers after."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from qrgate.clients.relying_party import ApiError
from support.stack import Stack
from support.tcp_proxy import proxied

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


def read_stream(stack: Stack, challenge_id: str, token: str, lines: list[str],
                ended: threading.Event) -> None:
    """Read the event stream to its end, as EventSource does; a cut connection would
    raise here (and leave ``ended`` unset)."""
    with httpx.stream("GET", f"{stack.base_url}/v1/confirm/challenges/{challenge_id}/events",
                      headers={"Qrgate-Browser-Token": token},
                      timeout=httpx.Timeout(10, read=30)) as response:
        lines.extend(response.iter_lines())
    ended.set()


def wait_for(condition: Any, *, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_review_9_database_outage_answers_503_and_recovers(
        stack_factory: Any, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = make_url(database_url)
    with proxied(str(url.host), int(url.port or 5432)) as proxy:
        stack: Stack = stack_factory(via=url.set(port=proxy.port).render_as_string(
            hide_password=False))
        phone = stack.enrolled_phone()
        started, _ = stack.start()
        lines: list[str] = []
        ended = threading.Event()
        reader = threading.Thread(target=read_stream, daemon=True, args=(
            stack, started["challenge_id"], started["browser_token"], lines, ended))
        reader.start()
        wait_for(lambda: any(line.startswith("event: state") for line in lines))

        with caplog.at_level(logging.INFO):
            proxy.cut()
            answers = [httpx.get(f"{stack.base_url}/v1/confirm/challenges",
                                 headers={"Authorization": f"Bearer {stack.api_key}"})
                       for _ in range(5)]
            for answer in answers:
                assert answer.status_code == 503
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "database_unavailable"
                assert int(answer.headers["retry-after"]) > 0
            ready = httpx.get(f"{stack.base_url}/readyz")
            assert (ready.status_code, ready.json()["code"]) == (503, "database_unavailable")
            # The stream says why and ends with a clean close, not a reset.
            assert ended.wait(15), "the stream did not end"
            assert "event: unavailable" in lines

            proxy.restore()
            wait_for(lambda: httpx.get(f"{stack.base_url}/readyz").status_code == 200)
            phone.scan_text(started["code"])
            assert phone.decide(started["challenge_id"], approve=True)["state"] == "approved"

        messages = [record.getMessage() for record in caplog.records]
        assert sum("database unavailable" in m for m in messages) == 1, messages
        assert sum("database available again" in m for m in messages) == 1, messages
        assert not any(record.exc_info for record in caplog.records)
        assert "Traceback" not in caplog.text


def test_review_9_a_client_retrying_after_503_gets_through(
        stack_factory: Any, database_url: str) -> None:
    url = make_url(database_url)
    with proxied(str(url.host), int(url.port or 5432)) as proxy:
        stack: Stack = stack_factory(via=url.set(port=proxy.port).render_as_string(
            hide_password=False))
        proxy.cut()
        with pytest.raises(ApiError) as caught:
            stack.rp.start_enrolment("alice")
        assert caught.value.status == 503
        proxy.restore()
        wait_for(lambda: httpx.get(f"{stack.base_url}/readyz").status_code == 200)
        assert stack.rp.start_enrolment("alice")["code"].startswith("QG1:")
