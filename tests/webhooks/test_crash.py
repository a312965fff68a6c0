"""kill -9 of ``qrgate serve`` after decisions committed and before their events reached
the receiver loses no event: they wait in the outbox, and the restarted server sends them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from qrgate.cli.main import cli
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import QrgateClient
from qrgate.storage.db import create_engine_for
from qrgate.storage.models import webhook_events
from support.serving import QRGATE, clean_env, free_port, wait_until_serving
from support.webhook_receiver import Receiver, verify, wait_until


def admin(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, ["admin", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def serve(tmp_path: Path, database_url: str) -> Iterator[tuple[dict[str, str], str, list[
        subprocess.Popen[str]]]]:
    """The environment, the base URL and the started servers (stopped afterwards)."""
    port = free_port()
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data"), "QRGATE_DATABASE_URL": database_url,
           "QRGATE_PORT": str(port), "QRGATE_WEBHOOK_ALLOW_LOOPBACK": "on",
           # Retries 2 s apart: the restarted server sends what the killed one could not.
           "QRGATE_WEBHOOK_RETRIES": "2,2,2,2,2,2", "QRGATE_LOG_LEVEL": "warning",
           "QRGATE_ACCESS_LOG": "off"}
    servers: list[subprocess.Popen[str]] = []
    yield env, f"http://127.0.0.1:{port}", servers
    for server in servers:
        if server.returncode is None:
            server.terminate()
            server.communicate(timeout=30)  # and close its pipe


def start(env: dict[str, str], base_url: str,
          servers: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    server = subprocess.Popen([*QRGATE, "serve", "--no-qr"], env=clean_env(**env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    servers.append(server)
    wait_until_serving(server, f"{base_url}/healthz")
    return server


def test_events_committed_before_a_kill_9_are_delivered_after_the_restart(
        serve: tuple[dict[str, str], str, list[subprocess.Popen[str]]]) -> None:
    env, base_url, servers = serve
    receiver = Receiver()  # not listening yet: the relying party is down
    admin(env, "org", "create", "bank", "--name", "Bank")
    admin(env, "app", "create", "--org", "bank", "--business-id", "web", "--name", "Web")
    admin(env, "user", "create", "--org", "bank", "--login", "alice")
    api_key = admin(env, "apikey", "create", "--org", "bank", "--business-id", "web").strip()
    secret = json.loads(admin(env, "webhook", "set", "--org", "bank", "--business-id", "web",
                              "--url", receiver.url))["secret"]

    server = start(env, base_url, servers)
    phone = PhoneSimulator(base_url)
    with QrgateClient(base_url, api_key=api_key) as rp, contextlib.closing(phone):
        enrolment = rp.start_enrolment("alice")
        phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
        started = rp.start_confirm("alice", operation="transfer", amount="10.00",
                                   currency="EUR")
        phone.scan_text(started["code"])
        phone.decide(started["challenge_id"], approve=True)

    # Both decisions committed; the server tried each event once, the receiver being down.
    # Killed between two attempts (no lease held), it can say nothing more about them.
    engine = create_engine_for(env["QRGATE_DATABASE_URL"])
    try:
        def rows() -> list[tuple[str, str, int, str | None, str]]:
            with engine.connect() as conn:
                return [(r.id, r.type, r.attempts, r.lease_owner, r.state) for r in
                        conn.execute(select(webhook_events).order_by(webhook_events.c.type))]

        wait_until(lambda: len(rows()) == 2 and all(
            attempts >= 1 and owner is None for _, _, attempts, owner, _ in rows()),
            what="a failed first attempt of each event")
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=30)
        before = rows()
        assert [(kind, state) for _, kind, _, _, state in before] == [
            ("confirm.approved", "pending"), ("device.added", "pending")]

        receiver.start()
        try:
            start(env, base_url, servers)
            wait_until(lambda: len(receiver.delivered()) >= 2, timeout=30,
                       what="the events after the restart")
            assert {r.id for r in receiver.delivered()} == {row[0] for row in before}
            assert {r.event["type"] for r in receiver.delivered()} == {
                "confirm.approved", "device.added"}
            approved = next(r for r in receiver.delivered()
                            if r.event["type"] == "confirm.approved")
            assert approved.event["data"]["challenge_id"] == started["challenge_id"]
            for request in receiver.delivered():
                verify(secret, request, now=float(request.headers["webhook-timestamp"]))
            wait_until(lambda: {state for *_, state in rows()} == {"delivered"},
                       what="the outbox settled")
        finally:
            receiver.stop()
    finally:
        engine.dispose()
