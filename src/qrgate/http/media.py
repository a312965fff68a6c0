"""Response classes that name their media type, so the OpenAPI document says exactly what
an image or event-stream operation answers (and nothing else)."""

from __future__ import annotations

from starlette.responses import Response


class PngImage(Response):
    media_type = "image/png"


class SvgImage(Response):
    media_type = "image/svg+xml"


class EventStream(Response):
    media_type = "text/event-stream"


class PdfDocument(Response):
    media_type = "application/pdf"
