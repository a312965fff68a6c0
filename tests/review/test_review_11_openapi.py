"""Review 11: the OpenAPI document tells the truth, so that a client generated from it
handles real errors (it used to crash on every 422)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qrgate.errors import ERROR_CODES
from support.stack import Stack

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
IMAGES = {"png": "image/png", "svg": "image/svg+xml"}


@pytest.fixture
def document(stack: Stack) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.base_url}/openapi.json").json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items()
            for method, op in item.items()]


def test_review_11_every_error_is_a_documented_problem(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"] == list(
        ERROR_CODES)
    for method, path, op in operations(document):
        errors = {status: r for status, r in op["responses"].items() if int(status) >= 400}
        assert {"422", "500", "503"} <= errors.keys(), (method, path)
        for status, response in errors.items():
            assert response["content"] == PROBLEM, (method, path, status)
        assert "Retry-After" in errors["503"]["headers"], (method, path)


def test_review_11_every_operation_names_who_may_call_it(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {"ApiKey", "DeviceId", "DeviceTimestamp", "DeviceSignature", "BrowserToken",
            "BrowserCookie"} <= schemes.keys()
    for method, path, op in operations(document):
        assert "security" in op, (method, path)
        for requirement in op["security"]:
            assert requirement.keys() <= schemes.keys()
        if op["security"]:
            assert "401" in op["responses"], (method, path)


def test_review_11_images_are_typed_as_images_only(document: dict[str, Any]) -> None:
    for _method, path, op in operations(document):
        extension = path.rsplit(".", 1)[-1] if "." in path else None
        if extension in IMAGES:
            assert op["responses"]["200"]["content"].keys() == {IMAGES[extension]}, path


def test_review_11_a_wrong_method_is_405_with_allow(stack: Stack) -> None:
    response = httpx.delete(f"{stack.base_url}/v1/confirm/scan")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    both = httpx.request("OPTIONS", f"{stack.base_url}/v1/confirm/challenges")
    assert both.headers["allow"] == "GET, HEAD, POST"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


def test_review_11_a_generated_client_handles_real_errors(stack: Stack, tmp_path: Path,
                                                           document: dict[str, Any]) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    config = tmp_path / "config.yaml"
    # The generator has no built-in type for image/*: they are bytes, as octet-streams are.
    config.write_text("content_type_overrides:\n  image/png: application/octet-stream\n"
                      "  image/svg+xml: application/octet-stream\n")
    generator = Path(sys.executable).parent / "openapi-python-client"
    subprocess.run([str(generator), "generate", "--path", str(spec), "--meta", "none",
                    "--config", str(config), "--output-path", str(tmp_path / "qrgate_client")],
                   check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("qrgate_client")
        create_user = importlib.import_module("qrgate_client.api.users.create_user")
        get_user = importlib.import_module("qrgate_client.api.users.get_user")
        models = importlib.import_module("qrgate_client.models")
        Client = client_module.AuthenticatedClient
        with Client(base_url=stack.base_url, token=stack.api_key) as client, \
                Client(base_url=stack.base_url, token="qgk_00_wrong") as stranger_client:
            invalid = create_user.sync_detailed(client=client,
                                                body=models.UserIn(login="no spaces"))
            unknown = get_user.sync_detailed("nobody", client=client)
            stranger = get_user.sync_detailed("alice", client=stranger_client)
            found = get_user.sync_detailed("alice", client=client)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("qrgate_client")]:
            del sys.modules[name]
    assert (int(invalid.status_code), invalid.parsed.code.value) == (422, "invalid_request")
    assert invalid.parsed.errors and invalid.parsed.errors[0].loc
    assert (int(unknown.status_code), unknown.parsed.code.value) == (404, "user_not_found")
    assert (int(stranger.status_code), stranger.parsed.code.value) == (401, "bad_api_key")
    assert found.parsed.login == "alice"
