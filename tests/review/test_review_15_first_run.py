"""Review 15: what a new user meets first: a landing page at ``/``, docs inside the
repository, key-holding files kept out of git, and an access log on by default that
records requests without their secrets."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from support.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


def test_review_15_the_root_is_a_landing_page(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in response.headers
    for link in ("docs", "redoc", "openapi.json", "v1/keys"):
        assert re.search(rf'href="[./]*{re.escape(link)}"', response.text), link


def test_review_15_the_readme_points_only_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme) + re.findall(r"`(\.\./[^`]+)`", readme):
        if target.startswith(("http://", "https://")):
            continue
        assert not target.startswith(".."), target
        assert (ROOT / target).exists(), target


@pytest.mark.parametrize("path", ["qrgate-data/keys/kek", "qrgate-data/qrgate.db",
                                  "phone.json", "alice.phone.json", "node_modules/x"])
def test_review_15_key_holding_files_are_ignored_by_git(path: str) -> None:
    result = subprocess.run(["git", "check-ignore", "--quiet", "--no-index", path], cwd=ROOT,
                            check=False)
    assert result.returncode == 0, f"{path} is not ignored"


def test_review_15_access_log_one_structured_line_without_secrets(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack.enrolled_phone()
    with caplog.at_level(logging.INFO, logger="qrgate.access"):
        started, browser = stack.start()
        browser.status()
        stack.rp.history(q="confidential-word")
    lines = [r.getMessage() for r in caplog.records if r.name == "qrgate.access"]
    entries = [json.loads(line) for line in lines]
    assert {"method", "path", "status", "ms", "client"} <= entries[0].keys()
    assert ("POST", "/v1/confirm/challenges", 201) in {
        (e["method"], e["path"], e["status"]) for e in entries}
    logged = "\n".join(lines)
    for secret in (started["browser_token"], stack.api_key, "confidential-word"):
        assert secret not in logged
