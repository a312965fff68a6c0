"""The phone app's files and its service worker's list (qrgate.web.app_shell): what is
served, what is precached, and how the version follows the contents. First on a small app
and vendor tree made here, then on the package's own app."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest

from qrgate.web.app_shell import APP_DIR, SERVICE_WORKER, is_served, load_shell
from qrgate.web.pages import VENDOR_DIR

TEMPLATE = (APP_DIR / SERVICE_WORKER).read_bytes()


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    app, vendor = tmp_path / "app", tmp_path / "vendor"
    write(app, {
        "index.html": "<!doctype html><title>t</title>",
        "sw.js": TEMPLATE,
        "app.css": "body{}",
        "manifest.webmanifest": "{}",
        "icons/icon.svg": "<svg/>",
        "i18n/en.json": "{}",
        "js/main.js": 'import { a } from "./shared/a.js";\n'
                      'import { decode } from "../../vendor/lib/lib.js";\n'
                      "import { register } from './shared/sw.js';\n",
        "js/shared/a.js": "export const a = 1; // import x from '../../vendor/unused/u.js'\n",
        "js/shared/sw.js": 'const u = new URL("../../sw.js", import.meta.url);\n'
                           'const base = new URL("../../../", import.meta.url);\n'
                           "export function register() {}\n",
        "js/scan.js": "const reader = await import("
                      '"../../vendor/wasmlib/dist/es/reader/index.js");\n',
        # Not for browsers:
        "package.json": "{}",
        "tsconfig.json": "{}",
        "README.md": "# notes",
        "js/main.test.js": "test()",
        "tests/helper.js": "x",
        "node_modules/dep/index.js": "x",
        ".eslintrc.json": "{}",
        "js/.cache/x.js": "x",
        "icons/source.xcf": b"\x00",
    })
    write(vendor, {
        "lib/lib.js": 'export * from "./inner/part.js";\nexport const decode = 1;\n',
        "lib/inner/part.js": "export const part = 2;\n",
        "lib/unused.js": "export const unused = 3;\n",
        "lib/package.json": "{}",
        "wasmlib/dist/es/reader/index.js": 'import { s } from "../share.js";\n',
        "wasmlib/dist/es/share.js": "export const s = /_(.+?)\\.wasm$/;\n",
        "wasmlib/dist/reader/reader.wasm": b"\x00asm\x01\x00\x00\x00",
        "wasmlib/LICENSE": "MIT",
        "unused/u.js": "export const u = 4;\n",
    })
    return app, vendor


def test_only_files_for_browsers_are_served(tree: tuple[Path, Path]) -> None:
    shell = load_shell(*tree)
    assert set(shell.files) == {
        "index.html", "sw.js", "app.css", "manifest.webmanifest", "icons/icon.svg",
        "i18n/en.json", "js/main.js", "js/shared/a.js", "js/shared/sw.js", "js/scan.js",
    }


@pytest.mark.parametrize(("path", "served"), [
    ("js/main.js", True), ("js/worker.mjs", True), ("index.html", True),
    ("manifest.webmanifest", True), ("i18n/zh-CN.json", True), ("icons/a.png", True),
    ("package.json", False), ("js/package-lock.json", False), ("jsconfig.json", False),
    ("js/a.test.js", False), ("js/a.spec.mjs", False), ("tests/a.js", False),
    ("js/__tests__/a.js", False), ("node_modules/x/y.js", False), (".hidden.js", False),
    ("js/.DS_Store", False), ("README.md", False), ("js/a.ts", False), ("js/a.js.map", False),
    ("Makefile", False),
])
def test_is_served(path: str, served: bool) -> None:
    assert is_served(PurePosixPath(path)) is served


def test_the_shell_is_every_served_file_and_the_imported_vendor_files(
    tree: tuple[Path, Path],
) -> None:
    shell = load_shell(*tree)
    assert shell.precache == tuple(sorted((
        "./", "app.css", "manifest.webmanifest", "icons/icon.svg", "i18n/en.json",
        "js/main.js", "js/shared/a.js", "js/shared/sw.js", "js/scan.js",
        # imported, and what that imports; not lib/unused.js nor lib/package.json
        "../vendor/lib/lib.js", "../vendor/lib/inner/part.js",
        # imported dynamically, with its own import and the package's WebAssembly
        "../vendor/wasmlib/dist/es/reader/index.js", "../vendor/wasmlib/dist/es/share.js",
        "../vendor/wasmlib/dist/reader/reader.wasm",
    )))
    assert shell.unresolved == ()


def test_the_worker_carries_the_list_and_the_version(tree: tuple[Path, Path]) -> None:
    shell = load_shell(*tree)
    worker = shell.files["sw.js"].body.decode()
    listed = re.search(r"const SHELL = /\* qrgate:shell \*/ (\[.*?\]);", worker, re.S)
    assert listed is not None and tuple(json.loads(listed.group(1))) == shell.precache
    assert f'const VERSION = /* qrgate:version */ "{shell.version}";' in worker
    assert re.fullmatch(r"[0-9a-f]{16}", shell.version)
    assert "/v1/" not in listed.group(1)


@pytest.mark.parametrize("changed", [
    "app/js/shared/a.js", "app/index.html", "app/icons/icon.svg", "vendor/lib/inner/part.js",
    "vendor/wasmlib/dist/reader/reader.wasm",
])
def test_a_changed_shell_file_changes_the_version(tree: tuple[Path, Path],
                                                  changed: str) -> None:
    before = load_shell(*tree)
    path = tree[0].parent / changed
    path.write_bytes(path.read_bytes() + b"\n")
    after = load_shell(*tree)
    assert after.version != before.version
    assert after.files["sw.js"].body != before.files["sw.js"].body


def test_files_outside_the_shell_leave_the_version_alone(tree: tuple[Path, Path]) -> None:
    before = load_shell(*tree)
    write(tree[0], {"README.md": "changed", "tests/helper.js": "changed"})
    write(tree[1], {"lib/unused.js": "changed", "wasmlib/LICENSE": "changed"})
    assert load_shell(*tree).version == before.version


def test_imports_that_lead_nowhere_are_reported(tree: tuple[Path, Path]) -> None:
    write(tree[0], {"js/broken.js": 'import "./missing.js";\nimport x from "cborg";\n'
                                    'import y from "../../vendor/lib/nope.js";\n'
                                    'import z from "https://cdn.example/z.js";\n'
                                    'import w from "../../../outside.js";\n'})
    assert load_shell(*tree).unresolved == (
        "js/broken.js imports './missing.js'", "js/broken.js imports 'cborg'",
        "js/broken.js imports '../../vendor/lib/nope.js'",
        "js/broken.js imports 'https://cdn.example/z.js'",
        "js/broken.js imports '../../../outside.js'",
    )


def test_a_template_without_its_placeholders_is_refused(tree: tuple[Path, Path]) -> None:
    write(tree[0], {"sw.js": "const SHELL = [];"})
    with pytest.raises(RuntimeError, match="placeholders"):
        load_shell(*tree)


# --- the package's own app ---------------------------------------------------------------


def test_the_package_app_imports_only_files_that_exist() -> None:
    assert load_shell(APP_DIR, VENDOR_DIR).unresolved == ()


def test_the_package_app_shell_lists_every_served_file() -> None:
    shell = load_shell(APP_DIR, VENDOR_DIR)
    app_files = {path.relative_to(APP_DIR).as_posix() for path in APP_DIR.rglob("*")
                 if path.is_file() and is_served(PurePosixPath(path.relative_to(APP_DIR)))}
    expected = {"./" if name == "index.html" else name for name in app_files} - {"sw.js"}
    own = {url for url in shell.precache if not url.startswith("../")}
    assert own == expected
    for required in ("./", "app.css", "manifest.webmanifest", "icons/icon.svg",
                     "icons/icon-192.png", "icons/icon-512.png", "icons/icon-maskable-512.png",
                     "js/main.js", "js/shared/sw-register.js"):
        assert required in own
    vendored = {url.removeprefix("../vendor/") for url in shell.precache
                if url.startswith("../")}
    assert all((VENDOR_DIR / name).is_file() for name in vendored)
    assert not any("v1/" in url for url in shell.precache)
    # Never the reference pages' bundles, licences or package manifests.
    assert not any(name.startswith(("redoc/", "swagger-ui-dist/")) for name in vendored)
    assert not any(name.endswith(("LICENSE", "package.json")) for name in vendored)
