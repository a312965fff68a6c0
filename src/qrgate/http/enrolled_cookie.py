"""The cookies by which the phone app notices that the browser deleted its keys.

Browsers evict a web app's storage (IndexedDB with the device keys and OCRA tokens) under
storage pressure, and Safari after seven days without a visit; cookies a server sets survive
both. So each enrolment adds the new device's id to ``qrgate_devices``, each token
activation the token's id to ``qrgate_tokens``, and the app compares the ids there with what
it still holds: one missing means its keys are gone, and the app guides the user to enrol
again instead of failing on the next scan. The ids are not secret (requests carry them); the
app must read the cookies, so they are not HttpOnly.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

DEVICES = "qrgate_devices"
TOKENS = "qrgate_tokens"
# As many as a browser could plausibly hold accounts or tokens for; the oldest fall off.
MAX_IDS = 16
# Chromium caps a cookie's life at 400 days.
MAX_AGE = 400 * 86_400
_ID = re.compile(r"^[0-9a-f]{32}$")


def remember(request: Request, response: Response, *, cookie: str, item_id: str) -> None:
    """Add ``item_id`` (a device's or a token's) to the ``cookie`` listing them."""
    known = [i for i in request.cookies.get(cookie, "").split(".") if _ID.match(i)]
    ids = [*(i for i in known if i != item_id), item_id][-MAX_IDS:]
    response.set_cookie(cookie, ".".join(ids), max_age=MAX_AGE, path="/",
                        secure=request.url.scheme == "https", httponly=False,
                        samesite="strict")
