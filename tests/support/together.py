"""Start several Python processes, as separate nodes would be, and release them together:
each script prints ``ready``, waits for a line on stdin, then does its work. Only what
crosses processes (database locks, the file system) can then keep them from colliding."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence


def run_together(script: str, *, args: Sequence[str] = (),
                 envs: Sequence[Mapping[str, str] | None]) -> list[tuple[int, str, str]]:
    """One process per entry of ``envs`` (None: inherit); each one's exit code, stdout
    and stderr."""
    nodes = [subprocess.Popen([sys.executable, "-c", script, *args], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for env in envs]
    try:
        for node in nodes:
            assert node.stdout is not None
            assert node.stdout.readline().strip() == "ready"
        for node in nodes:  # release them as close together as we can
            assert node.stdin is not None
            node.stdin.write("go\n")
            node.stdin.flush()
        outcomes = [node.communicate(timeout=60) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.communicate()
    return [(node.returncode, out, err) for node, (out, err) in zip(nodes, outcomes, strict=True)]
