"""Content types of the browser files qrgate serves, fixed here rather than guessed.

Starlette asks Python's ``mimetypes``, which reads the host's tables (``/etc/mime.types``,
the Windows registry): on a slim container without one, ``.webmanifest`` comes out as
``text/plain``, and on some Windows machines ``.js`` does too. With ``nosniff`` a module
script of the wrong type does not run, and ``WebAssembly.instantiateStreaming`` refuses
anything but ``application/wasm``; so the types the app depends on do not depend on the host.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Final

MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def media_type_of(path: PurePath | str) -> str | None:
    """The content type to serve ``path`` with, or None for a kind qrgate does not pin."""
    return MEDIA_TYPES.get(PurePath(path).suffix.lower())
