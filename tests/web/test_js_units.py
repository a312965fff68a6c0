"""The phone app's JavaScript protocol core (``src/qrgate/web/app/js``) against Python.

The JavaScript unit tests (``tests/js/*.test.mjs``, Node's built-in runner) check the app's
modules against vectors that the Python reference made (``tests/support/js_vectors.py``);
here the vectors are rebuilt to prove the committed files are current, the JavaScript tests
run in one Node process, and signatures the app makes with WebCrypto are checked by the
server's own ``verify_request``.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qrgate.core.device_auth import load_public_key, request_target, verify_request
from support.js_vectors import OUT_DIR, build

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.mjs"))
DEVICE_JS = ROOT / "src" / "qrgate" / "web" / "app" / "js" / "shared" / "device.js"
NODE_TIMEOUT = 60

# Signs each request of stdin (device.json's shape) with a key made by generateDeviceKey and
# prints the public key and the signatures.
SIGN_IN_NODE = """
import { readFileSync } from "node:fs";
const device = await import(process.argv[1]);
const requests = JSON.parse(readFileSync(0, "utf8"));
const { privateKey, publicKey } = await device.generateDeviceKey();
const signatures = [];
for (const request of requests) {
  signatures.push(await device.signRequest({
    privateKey, method: request.method, target: device.requestTarget(request.path, request.query),
    timestamp: request.timestamp, deviceId: request.deviceId,
    body: Uint8Array.from(Buffer.from(request.body, "hex")),
  }));
}
console.log(JSON.stringify({ publicKey: await device.publicKeyB64u(publicKey), signatures }));
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` not found: the JavaScript unit tests need Node.js 20 or newer "
                    "(apt-get install nodejs)", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True,
                             timeout=NODE_TIMEOUT).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < 20:
        pytest.fail(f"node {version} is too old: the JavaScript unit tests need Node.js 20 "
                    "or newer", pytrace=False)
    return node


def test_committed_vectors_are_what_python_makes_now() -> None:
    made = build()
    committed = {path.name: path.read_text(encoding="utf-8") for path in OUT_DIR.glob("*.json")}
    assert sorted(committed) == sorted(made)
    stale = [name for name in made if committed[name] != made[name]]
    assert not stale, (f"{', '.join(stale)} out of date: run "
                       ".venv/bin/python tests/support/js_vectors.py")


def test_javascript_unit_tests() -> None:
    assert JS_TESTS, "no tests/js/*.test.mjs files"
    result = subprocess.run(
        [_node(), "--test", *map(str, JS_TESTS)], cwd=ROOT, capture_output=True, text=True,
        timeout=NODE_TIMEOUT, check=False)
    assert result.returncode == 0, (
        f"node --test failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def test_signatures_made_in_javascript_verify_in_python() -> None:
    # Four rounds of every request: with ECDSA's random nonce about half the raw signatures
    # have a high s, which verify_request refuses unless the app normalised it.
    requests: list[dict[str, Any]] = json.loads(
        (OUT_DIR / "device.json").read_text(encoding="utf-8"))["requests"] * 4
    result = subprocess.run(
        [_node(), "--input-type=module", "-e", SIGN_IN_NODE, DEVICE_JS.as_uri()],
        input=json.dumps(requests), capture_output=True, text=True, timeout=NODE_TIMEOUT,
        check=False)
    assert result.returncode == 0, result.stderr
    signed = json.loads(result.stdout)
    public_key = load_public_key(base64.urlsafe_b64decode(signed["publicKey"] + "=="))
    for request, signature in zip(requests, signed["signatures"], strict=True):
        verify_request(
            public_key=public_key, signature=signature, method=request["method"],
            path=request_target(request["path"], request["query"]),
            timestamp=request["timestamp"], device_id=request["deviceId"],
            body=bytes.fromhex(request["body"]), now=request["timestamp"], max_skew=0)
