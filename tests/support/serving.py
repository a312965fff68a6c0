"""`qrgate` run as a process by a test, as a user runs it: the command, a clean
environment, a free port, the one error line it must print, and waiting until it serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

QRGATE = [sys.executable, "-m", "qrgate.cli"]


def clean_env(**values: str) -> dict[str, str]:
    """The test process's environment without any QRGATE_ setting of the developer's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("QRGATE_")}
    return {**env, **values}


def run_qrgate(*args: str, cwd: Path, timeout: float = 60,
               **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QRGATE, *args], env=clean_env(**env), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def one_error_line(stderr: str, stdout: str = "") -> str:
    assert "Traceback" not in stderr + stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("qrgate: error: "), stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(server: subprocess.Popen[str], url: str, *,
                       get: Callable[[str], httpx.Response] | None = None,
                       seconds: float = 60) -> None:
    """Until ``url`` (``/healthz``) answers 200. Fails at once, with the server's output,
    when the process has exited; after ``seconds`` when it never answers."""
    fetch = get or (lambda where: httpx.get(where, timeout=5))
    deadline = time.monotonic() + seconds
    while True:
        try:
            if fetch(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, server.communicate()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
