"""Scheme A (CN103078862A): one authentication with a grid card, as pure rules.

An *attempt* (SPEC A steps 1-4) is what the server holds between the password and the
scan: the card, the position asked, when that position's time window closes, how many
other positions were asked since (re-issues), and how many wrong answers were given. The
storage and the audit live in ``qrgate.gridcard.attempts``; this module only decides.

**The time window** (claim 5: "adjusted dynamically"), :func:`window_seconds`:

1.  Base: the median of the user's last :attr:`WindowRule.history` answer times (from the
    position being shown to the right cell arriving), doubled, plus
    :attr:`WindowRule.margin` seconds. Doubling the median leaves room for a slow day
    without letting one very slow answer stretch everyone's window; the margin covers the
    network and opening the camera. With fewer than :attr:`WindowRule.min_history` answers
    the base is :attr:`WindowRule.default`.
2.  Risk: the operation's risk scales the base: ``low`` x1.5, ``normal`` x1, ``high`` x0.5.
    A payment gets less time for someone looking over the user's shoulder to act on a
    photographed card.
3.  Bounds: the result is rounded up to whole seconds and clamped to
    [:attr:`WindowRule.minimum`, :attr:`WindowRule.maximum`] (``QRGATE_GRIDCARD_WINDOW_MIN``
    and ``_MAX``), so history can neither shrink the window below what a person needs nor
    grow it past what the operator allows.

**Re-issue** (claims 6-7): once a position's window has passed, the phone may ask for
another position (:func:`check_reissue`), at most ``max_reissues`` times per attempt; one
more and the attempt fails (``reissue_limit``). Before the window passes, asking is
``window_open``: a new position on demand would let someone who holds a few cells of a
photographed card fish for one of them.

**Positions** (:func:`pick_position`) are drawn uniformly from the card's unused cells,
never the one just asked when another is left.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from qrgate.core.codes import CodeType, KeySource, decode_code, encode_code
from qrgate.core.gridcard import Position
from qrgate.core.keyring import KeyRing
from qrgate.errors import Conflict, Expired, InvalidField, MalformedCode

ATTEMPT_ID_BYTES: Final = 16
ANSWER_TOKEN_BYTES: Final = 32


class AttemptState(StrEnum):
    PENDING = "pending"
    AUTHENTICATED = "authenticated"
    FAILED = "failed"
    EXPIRED = "expired"


TERMINAL_STATES: Final = frozenset(
    {AttemptState.AUTHENTICATED, AttemptState.FAILED, AttemptState.EXPIRED})


class Risk(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


RISK_FACTOR: Final = {Risk.LOW: 1.5, Risk.NORMAL: 1.0, Risk.HIGH: 0.5}


@dataclass(frozen=True, kw_only=True)
class WindowRule:
    minimum: int = 20
    maximum: int = 120
    default: int = 60
    margin: int = 10
    history: int = 5
    min_history: int = 3

    def __post_init__(self) -> None:
        if not 5 <= self.minimum <= self.default <= self.maximum <= 600:
            raise InvalidField("a grid card window needs 5 <= minimum <= default <= maximum "
                               "<= 600 seconds")


def window_seconds(rule: WindowRule, *, recent: Sequence[float], risk: Risk) -> int:
    """The time window for the next position; ``recent``: the user's latest answer times in
    seconds, newest first (only the first ``rule.history`` count)."""
    times = [t for t in recent[: rule.history] if t >= 0]
    if len(times) < rule.min_history:
        base = float(rule.default)
    else:
        base = 2 * statistics.median(times) + rule.margin
    scaled = math.ceil(base * RISK_FACTOR[risk])
    return max(rule.minimum, min(rule.maximum, scaled))


def uniform_index(count: int, draw: Callable[[int], bytes]) -> int:
    """An index in ``range(count)``, uniform: 32-bit draws above the largest multiple of
    ``count`` are drawn again, so no index is favoured by the modulo."""
    if count < 1:
        raise InvalidField("nothing to choose from")
    limit = (1 << 32) - (1 << 32) % count
    while True:
        value = int.from_bytes(draw(4), "big")
        if value < limit:
            return value % count


def pick_position(free: Sequence[Position], draw: Callable[[int], bytes], *,
                  avoid: Position | None = None) -> Position:
    """A random position among ``free`` (the card's unused cells), other than ``avoid``
    while another is left. ``card_exhausted`` when none is free."""
    choices = sorted(free)
    if avoid is not None and len(choices) > 1 and avoid in choices:
        choices.remove(avoid)
    if not choices:
        raise Conflict("every cell of this card was used; ask for a new card",
                       code="card_exhausted")
    return choices[uniform_index(len(choices), draw)]


def check_answer_in_time(*, position_expires_at: float, now: float) -> None:
    if now > position_expires_at:
        raise Expired("the time to scan this position has passed; ask for another position",
                      code="late_answer")


def check_reissue(*, position_expires_at: float, now: float, reissues: int,
                  max_reissues: int) -> None:
    """Whether another position may be asked now (see the module's docstring)."""
    if now <= position_expires_at:
        raise Conflict("the time to scan this position has not passed yet",
                       code="window_open")
    if reissues >= max_reissues:
        raise Conflict(f"no more than {max_reissues} other positions per attempt",
                       code="reissue_limit")


# --- the code a relying party shows so the phone app can join its attempt ---------------


class JoinClaim:
    TOKEN: Final = 10


@dataclass(frozen=True, kw_only=True)
class JoinCode:
    attempt_id: str
    answer_token: bytes
    issuer: str


def issue_join_code(*, attempt_id: str, answer_token: bytes, issuer: str, now: int,
                    expires_at: int, keyring: KeyRing) -> str:
    """``QG1:`` code (type GRIDCARD) naming the attempt and carrying its answer token: the
    relying party's page shows it beside the position, the app scans it."""
    return encode_code(code_type=CodeType.GRIDCARD, code_id=bytes.fromhex(attempt_id),
                       issued_at=now, expires_at=expires_at, issuer=issuer,
                       claims={JoinClaim.TOKEN: answer_token}, keyring=keyring)


def read_join_code(text: str, *, keys: KeySource, now: float) -> JoinCode:
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.GRIDCARD)
    token = verified.claims.get(JoinClaim.TOKEN)
    if len(verified.code_id) != ATTEMPT_ID_BYTES or not isinstance(token, bytes) \
            or len(token) != ANSWER_TOKEN_BYTES:
        raise MalformedCode("not a grid card attempt code")
    return JoinCode(attempt_id=verified.code_id.hex(), answer_token=token,
                    issuer=verified.issuer)
