"""What names, ids and texts qrgate accepts: one alphabet per kind of value.

The HTTP wire types (``qrgate.http.schemas``) and the command line validate with these same
patterns, so a value the API refuses can never be created another way, and a value that was
created can always be named again in a URL (a login such as ``ü/../x y`` cannot exist).

Texts refuse control characters: PostgreSQL refuses NUL in text columns, terminals and logs
interpret the others. Multi-line texts (a transaction's demand, a scene's content) keep
tab and newline.
"""

from __future__ import annotations

import re
from typing import Final

from qrgate.errors import ErrorCode, InvalidField

# 128-bit random ids, hex: challenges, transactions, tokens, devices, enrolments.
ID_PATTERN: Final = r"^[0-9a-f]{32}$"
# Logins travel in URL paths (/v1/users/{login}): letters, digits and . _ @ + -, starting
# with a letter or digit so "." and ".." (which clients collapse in paths) are impossible.
LOGIN_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
# An application's business id (SPEC C 601) and an organisation's slug.
BUSINESS_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
# One line of text: no control characters at all (C0, DEL, C1).
LINE_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Several lines: tab and newline allowed, other controls not.
TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
# A QR code's text: QR alphanumeric mode, the alphabet of every QG code (prefix + Base45).
CODE_PATTERN: Final = r"^[0-9A-Z $%*+./:-]+$"

MAX_LOGIN: Final = 128
MAX_LINE: Final = 200


def _check(value: str, pattern: str, *, what: str, code: ErrorCode = "invalid_field") -> str:
    if not re.fullmatch(pattern, value):
        # mutation: dropping code= is equivalent today: no caller passes a code other than
        # the default, which is InvalidField's own.
        raise InvalidField(f"{what} has characters or a length that are not allowed", code=code)
    return value


def login(value: str) -> str:
    return _check(value, LOGIN_PATTERN, what="login")


def business_id(value: str) -> str:
    return _check(value, BUSINESS_ID_PATTERN, what="business id")


def slug(value: str) -> str:
    return _check(value, SLUG_PATTERN, what="organisation slug")


def line(value: str, *, what: str, max_length: int = MAX_LINE) -> str:
    if len(value) > max_length:
        raise InvalidField(f"{what} is longer than {max_length} characters")
    return _check(value, LINE_PATTERN, what=what)


def identifier(value: str, *, what: str) -> str:
    return _check(value, ID_PATTERN, what=what)
