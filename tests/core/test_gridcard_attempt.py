"""The rules of one grid card authentication (qrgate.core.gridcard_attempt): the time
window's documented rule and its bounds, uniform positions that skip used cells, re-issue
and lateness, and the code a relying party's page shows."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrgate.core.codes import CodeType, encode_code
from qrgate.core.gridcard import Layout, Position
from qrgate.core.gridcard_attempt import (
    ANSWER_TOKEN_BYTES,
    Risk,
    WindowRule,
    check_answer_in_time,
    check_reissue,
    issue_join_code,
    pick_position,
    read_join_code,
    uniform_index,
    window_seconds,
)
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import Conflict, Expired, InvalidField, MalformedCode, WrongCodeType

RULE = WindowRule()
times = st.lists(st.floats(min_value=0, max_value=10_000, allow_nan=False), max_size=12)


def test_the_rule_as_documented() -> None:
    # Fewer than three answers: the default, scaled by the risk.
    assert window_seconds(RULE, recent=[5, 5], risk=Risk.NORMAL) == 60
    assert window_seconds(RULE, recent=[], risk=Risk.LOW) == 90
    assert window_seconds(RULE, recent=[], risk=Risk.HIGH) == 30
    # Twice the median of the last five, plus ten seconds: median(9, 11, 30, 7, 12) = 11.
    assert window_seconds(RULE, recent=[9, 11, 30, 7, 12, 1000], risk=Risk.NORMAL) == 32
    assert window_seconds(RULE, recent=[9, 11, 30, 7, 12], risk=Risk.LOW) == 48
    # Bounded both ways.
    assert window_seconds(RULE, recent=[1, 1, 1], risk=Risk.HIGH) == 20
    assert window_seconds(RULE, recent=[500, 500, 500], risk=Risk.LOW) == 120


@given(recent=times, risk=st.sampled_from(list(Risk)))
def test_the_window_is_always_within_its_bounds(recent: list[float], risk: Risk) -> None:
    assert RULE.minimum <= window_seconds(RULE, recent=recent, risk=risk) <= RULE.maximum


@given(recent=times)
def test_more_risk_never_means_more_time(recent: list[float]) -> None:
    low, normal, high = (window_seconds(RULE, recent=recent, risk=r)
                         for r in (Risk.LOW, Risk.NORMAL, Risk.HIGH))
    assert low >= normal >= high


@given(recent=st.lists(st.floats(min_value=0, max_value=50), min_size=3, max_size=5),
       slower=st.floats(min_value=0, max_value=50))
def test_slower_answers_never_shrink_the_window(recent: list[float], slower: float) -> None:
    before = window_seconds(RULE, recent=recent, risk=Risk.NORMAL)
    after = window_seconds(RULE, recent=[t + slower for t in recent], risk=Risk.NORMAL)
    assert after >= before


def test_a_rule_with_bounds_out_of_order_is_refused() -> None:
    # Each bound may equal its neighbour; one step past any of them is refused.
    WindowRule(minimum=5, default=5, maximum=5)
    WindowRule(minimum=600, default=600, maximum=600)
    for wrong in ({"minimum": 4, "default": 4, "maximum": 4}, {"minimum": 61},
                  {"default": 121}, {"maximum": 601, "default": 601, "minimum": 601},
                  {"minimum": 90, "maximum": 60}):
        with pytest.raises(InvalidField) as refused:
            WindowRule(**wrong)
        assert "minimum <= default <= maximum" in str(refused.value)


def _draws(values: list[int]) -> Callable[[int], bytes]:
    source = iter(values)
    return lambda n: next(source).to_bytes(n, "big")


def test_an_index_is_drawn_from_32_big_endian_bits() -> None:
    sizes: list[int] = []

    def draw(n: int) -> bytes:
        sizes.append(n)
        return bytes([0, 0, 1, 2])

    assert uniform_index(1000, draw) == 0x0102 % 1000
    assert sizes == [4]


def test_indices_above_the_last_whole_multiple_are_drawn_again() -> None:
    # 2**32 % 3 == 1: the value 2**32 - 1 would favour index 0, so it is drawn again.
    assert uniform_index(3, _draws([2**32 - 1, 7])) == 7 % 3
    assert uniform_index(3, _draws([2**32 - 2])) == (2**32 - 2) % 3
    with pytest.raises(InvalidField):
        uniform_index(0, _draws([1]))


def test_positions_are_uniform_over_the_unused_cells() -> None:
    free = Layout().positions()[:7]
    counter = Counter(pick_position(free, _draws([i]))
                      for i in range(7 * 100))
    assert set(counter) == set(free) and set(counter.values()) == {100}


@given(used=st.sets(st.integers(min_value=0, max_value=29), max_size=29),
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_used_cell_is_never_asked_while_another_is_free(used: set[int], seed: int) -> None:
    positions = Layout().positions()
    free = [p for i, p in enumerate(positions) if i not in used]
    picked = pick_position(free, _draws([seed, 0]))  # 0: if seed is drawn again
    assert picked in free


def test_the_position_just_asked_is_avoided_while_another_is_free() -> None:
    a1, a2 = Position(row=0, column=0), Position(row=0, column=1)
    assert all(pick_position([a1, a2], _draws([i]), avoid=a1) == a2 for i in range(10))
    assert pick_position([a1], _draws([3]), avoid=a1) == a1
    with pytest.raises(Conflict) as spent:
        pick_position([], _draws([0]))
    assert spent.value.code == "card_exhausted"


def test_lateness_and_reissue() -> None:
    check_answer_in_time(position_expires_at=100, now=100)
    with pytest.raises(Expired) as late:
        check_answer_in_time(position_expires_at=100, now=100.5)
    assert late.value.code == "late_answer"
    with pytest.raises(Conflict) as early:
        check_reissue(position_expires_at=100, now=100, reissues=0, max_reissues=2)
    assert early.value.code == "window_open"
    check_reissue(position_expires_at=100, now=101, reissues=1, max_reissues=2)
    with pytest.raises(Conflict) as bound:
        check_reissue(position_expires_at=100, now=101, reissues=2, max_reissues=2)
    assert bound.value.code == "reissue_limit"


@pytest.fixture(scope="module")
def keyring() -> KeyRing:
    return KeyRing(active=SigningKey.generate(now=1000))


def test_the_join_code_round_trips_and_is_bound_to_its_type(keyring: KeyRing) -> None:
    token = bytes(range(ANSWER_TOKEN_BYTES))
    code = issue_join_code(attempt_id="ab" * 16, answer_token=token, issuer="qrgate",
                           now=1000, expires_at=1300, keyring=keyring)
    read = read_join_code(code, keys=keyring.verifier, now=1100)
    assert (read.attempt_id, read.answer_token, read.issuer) == ("ab" * 16, token, "qrgate")
    with pytest.raises(Expired):
        read_join_code(code, keys=keyring.verifier, now=1400)
    other = encode_code(code_type=CodeType.CONFIRM, code_id=b"\x01" * 16, issued_at=1000,
                        expires_at=1300, issuer="qrgate", claims={}, keyring=keyring)
    with pytest.raises(WrongCodeType):
        read_join_code(other, keys=keyring.verifier, now=1100)


@pytest.mark.parametrize(("code_id", "token"), list(itertools.product(
    [b"\x01" * 15, b"\x01" * 16], [b"short", "text", None])))
def test_a_join_code_without_its_fields_is_malformed(
        keyring: KeyRing, code_id: bytes, token: object) -> None:
    claims = {} if token is None else {10: token}
    code = encode_code(code_type=CodeType.GRIDCARD, code_id=code_id, issued_at=1000,
                       expires_at=1300, issuer="qrgate", claims=claims, keyring=keyring)
    with pytest.raises(MalformedCode):
        read_join_code(code, keys=keyring.verifier, now=1100)
