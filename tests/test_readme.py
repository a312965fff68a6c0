"""README's walk-throughs run as written: every ``sh`` block of "Scheme C with curl",
"Scheme E with curl" and "Scheme A with curl", in order, in bash, from an empty directory,
against the real ``qrgate serve`` they start. Only the port changes (8000 would clash with
a server that runs here already) and the venv's ``bin`` is put on ``PATH``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qrgate.cli.demo import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = ("## Scheme C with curl", "## Scheme E with curl", "## Scheme A with curl")


def walk_through() -> str:
    text = README.read_text()
    blocks: list[str] = []
    for title in SECTIONS:
        section = text.split(title, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return "\n".join(blocks)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("curl") is None,
                    reason="the walk-throughs use jq and curl (Debian packages jq, curl)")
def test_the_readme_walk_throughs_run(tmp_path: Path) -> None:
    port = free_port()
    script = walk_through().replace(":8000", f":{port}")
    assert "qrgate serve &" in script and "verify-qr chain2.png" in script
    (tmp_path / "walk.sh").write_text(
        "set -euo pipefail\n"
        # Stop the server and the event stream however the script ends.
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QRGATE_")},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "QRGATE_PORT": str(port)}
    result = subprocess.run(["bash", "walk.sh"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=180, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert '"state":"approved"' in output.replace(" ", "")  # the pushed result
    assert "VERIFIED: 2 link(s)" in output
    assert output.count("authenticated") >= 3  # two grid card sign-ins, one pushed
    assert '"alice",\n  "bob"' in output
    assert "Traceback" not in output
