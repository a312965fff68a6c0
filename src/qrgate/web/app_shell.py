"""The phone app's files as the server serves them, and the list its service worker keeps.

Everything is read once, when the app is built, so what is served, what the list names and
the version that names the list all describe the same bytes.

**Served** (at ``/app/``): each file of ``web/app/`` of a type browsers load
(qrgate.web.media_types), unless it is hidden, under a ``tests``/``node_modules``
directory, a package or compiler manifest (``package.json``, ``tsconfig.json``) or a test
(``*.test.js``, ``*.spec.js``). ``sw.js`` is served filled in (below).

**The shell** (what the service worker precaches, as URLs relative to ``sw.js``): every
served file, ``index.html`` as ``./`` (the URL the app is opened at) and ``sw.js`` left out
(the browser keeps the worker itself); every vendored file an app module imports, directly
or through other vendored modules (qrgate.web.js_imports finds the imports); and the
WebAssembly files of each vendored package reached, because zxing-wasm fetches its
``.wasm`` at run time from a URL the app gives it, which no import statement names. Worker
scripts and files named with ``new URL("...", import.meta.url)`` are followed too.

**The version** is a digest of the shell's contents and of the ``sw.js`` template. It is
written into ``sw.js`` with the list, so a changed file changes ``sw.js``, the browser
installs the new worker, and the worker's new cache name retires the old cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from qrgate.web.js_imports import imported_specifiers
from qrgate.web.media_types import media_type_of

log = logging.getLogger("qrgate.web")

APP_DIR: Final = Path(__file__).parent / "app"
SERVICE_WORKER: Final = "sw.js"
INDEX: Final = "index.html"
# Development files that may sit beside the app's own and must not be served.
EXCLUDED_DIRS: Final = frozenset({"tests", "test", "__tests__", "node_modules"})
EXCLUDED_NAMES: Final = frozenset({"package.json", "package-lock.json", "tsconfig.json",
                                   "jsconfig.json"})
EXCLUDED_SUFFIXES: Final = (".test.js", ".spec.js", ".test.mjs", ".spec.mjs")
MODULE_SUFFIXES: Final = (".js", ".mjs")
# The placeholders of sw.js, valid JavaScript as they stand (the file lints and runs as is).
VERSION_MARK: Final = '/* qrgate:version */ "dev"'
SHELL_MARK: Final = "/* qrgate:shell */ []"
# In the site's URL space the app lives at app/ and the vendored files at vendor/.
_APP: Final = "app/"
_VENDOR: Final = "vendor/"


@dataclass(frozen=True, kw_only=True)
class AppFile:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True, kw_only=True)
class AppShell:
    # Served under /app/, by path relative to it ("js/main.js"); "sw.js" filled in.
    files: Mapping[str, AppFile]
    # What the service worker precaches, relative to sw.js ("./", "../vendor/...").
    precache: tuple[str, ...]
    version: str
    # Imports that lead to nothing served ("js/x.js imports 'y'"): such a module fails to
    # load online too. Logged at load; tests expect none.
    unresolved: tuple[str, ...]


def is_served(relative: PurePosixPath) -> bool:
    """Whether the file at ``relative`` (inside the app's directory) is for browsers."""
    parts = relative.parts
    if any(part.startswith(".") for part in parts):
        return False
    if EXCLUDED_DIRS.intersection(parts[:-1]) or relative.name in EXCLUDED_NAMES:
        return False
    if relative.name.endswith(EXCLUDED_SUFFIXES):
        return False
    return media_type_of(relative) is not None


def load_shell(app_dir: Path, vendor_dir: Path) -> AppShell:
    sources = {
        path.relative_to(app_dir).as_posix(): path.read_bytes()
        for path in sorted(app_dir.rglob("*"))
        if path.is_file() and is_served(PurePosixPath(path.relative_to(app_dir).as_posix()))
    }
    template = sources.pop(SERVICE_WORKER, None)
    if template is None or VERSION_MARK.encode() not in template \
            or SHELL_MARK.encode() not in template:
        raise RuntimeError(f"{app_dir / SERVICE_WORKER} lacks its placeholders "
                           f"{VERSION_MARK} and {SHELL_MARK}")
    vendored, unresolved = _vendored_imports(sources, vendor_dir)
    contents = {("./" if name == INDEX else name): body for name, body in sources.items()}
    contents |= {f"../{_VENDOR}{name}": (vendor_dir / name).read_bytes() for name in vendored}
    precache = tuple(sorted(contents))
    version = _version(contents, template)
    worker = (template.decode("utf-8")
              .replace(VERSION_MARK, f'/* qrgate:version */ "{version}"', 1)
              .replace(SHELL_MARK, "/* qrgate:shell */ " + json.dumps(precache, indent=2), 1))
    files = {name: _app_file(name, body) for name, body in sources.items()}
    files[SERVICE_WORKER] = _app_file(SERVICE_WORKER, worker.encode("utf-8"))
    for problem in unresolved:
        log.warning("phone app: %s, which the server does not serve", problem)
    return AppShell(files=files, precache=precache, version=version,
                    unresolved=tuple(unresolved))


def _app_file(name: str, body: bytes) -> AppFile:
    media_type = media_type_of(name)
    assert media_type is not None  # is_served() admitted only pinned types
    return AppFile(body=body, media_type=media_type,
                   etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _version(contents: Mapping[str, bytes], template: bytes) -> str:
    digest = hashlib.sha256(hashlib.sha256(template).digest())
    for url in sorted(contents):
        digest.update(f"{url}\0{hashlib.sha256(contents[url]).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def _vendored_imports(sources: Mapping[str, bytes],
                      vendor_dir: Path) -> tuple[list[str], list[str]]:
    """The vendored files (relative to ``vendor_dir``) that the app's modules need, and the
    imports that lead nowhere."""
    vendored: set[str] = set()
    unresolved: list[str] = []
    queue = deque(_APP + name for name in sources if name.endswith(MODULE_SUFFIXES))
    seen = set(queue)
    while queue:
        module = queue.popleft()
        if module.startswith(_APP):
            source = sources[module.removeprefix(_APP)]
        else:
            source = (vendor_dir / module.removeprefix(_VENDOR)).read_bytes()
        for specifier in imported_specifiers(source.decode("utf-8", errors="replace")):
            if specifier.endswith("/"):
                continue  # new URL("../../", import.meta.url): a base URL, not a file
            target = _resolve(module, specifier)
            if target is not None and target.startswith(_APP) \
                    and target.removeprefix(_APP) in {*sources, SERVICE_WORKER}:
                continue  # the app's own files are all in the shell already
            if target is None or not target.startswith(_VENDOR) \
                    or not _vendored_file(vendor_dir, target.removeprefix(_VENDOR)):
                unresolved.append(f"{module.removeprefix(_APP)} imports {specifier!r}")
                continue
            name = target.removeprefix(_VENDOR)
            vendored.add(name)
            vendored.update(_wasm_of_package(vendor_dir, name))
            if target.endswith(MODULE_SUFFIXES) and target not in seen:
                seen.add(target)
                queue.append(target)
    return sorted(vendored), unresolved


def _resolve(module: str, specifier: str) -> str | None:
    """``specifier`` as imported by ``module``, as a path from the site's root, or None for
    one that names no file of this site (a bare package name, another origin)."""
    if specifier.startswith("/") and not specifier.startswith("//"):
        joined = specifier.lstrip("/")
    elif specifier.startswith(("./", "../")):
        joined = posixpath.join(posixpath.dirname(module), specifier)
    else:
        return None
    path = posixpath.normpath(joined.split("?", 1)[0].split("#", 1)[0])
    return None if path.startswith("..") or path == "." else path


def _vendored_file(vendor_dir: Path, name: str) -> bool:
    path = (vendor_dir / name).resolve()
    return path.is_file() and path.is_relative_to(vendor_dir.resolve())


def _wasm_of_package(vendor_dir: Path, name: str) -> list[str]:
    package = name.split("/", 1)[0]
    return [path.relative_to(vendor_dir).as_posix()
            for path in sorted((vendor_dir / package).rglob("*.wasm"))]
