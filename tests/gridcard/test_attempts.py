"""Authenticating with a grid card over HTTP (scheme A, SPEC steps 1-4), on SQLite and
PostgreSQL: the app alone and a relying party, every rejection with its code, time windows
and re-issues, used cells never asked again, failures that lock the user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from qrgate.accounts import directory
from qrgate.core.gridcard import Layout, parse_cell
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.storage.audit import search_audit
from qrgate.storage.models import gridcard_attempts, gridcard_cells
from support.stack import PASSWORD, Stack

TOKEN = "qrgate-attempt-token"


def issue(stack: Stack, login: str = "alice", days: int = 365) -> IssuedCard:
    return cards.run_issue(stack.rt, org_slug="bank", login=login, layout=Layout(),
                           ttl_days=days, issuer="operator", actor="test")


def cell_at(card: IssuedCard, label: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label == label)


def other_cell(card: IssuedCard, label: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label != label)


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        yield client


def sign_in(http: httpx.Client, login: str = "alice", password: str = PASSWORD,
            **extra: Any) -> httpx.Response:
    return http.post("/v1/gridcard/sign-in", json={"organisation": "bank", "login": login,
                                                   "password": password, **extra})


def started(http: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = sign_in(http, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def answer(http: httpx.Client, attempt: dict[str, Any], cell: str) -> httpx.Response:
    return http.post(f"/v1/gridcard/attempts/{attempt['attempt_id']}/answer",
                     json={"cell": cell}, headers={TOKEN: attempt["answer_token"]})


def reissue(http: httpx.Client, attempt: dict[str, Any]) -> httpx.Response:
    return http.post(f"/v1/gridcard/attempts/{attempt['attempt_id']}/reissue",
                     headers={TOKEN: attempt["answer_token"]})


def code_of(response: httpx.Response) -> str:
    return str(response.json()["code"])


def failures(stack: Stack, login: str = "alice") -> int:
    with stack.rt.read() as conn:
        return directory.find_user(conn, org_id=directory.org_id_by_slug(conn, "bank"),
                                   login=login).failed_attempts


def used_positions(stack: Stack, card: IssuedCard) -> set[str]:
    with stack.rt.read() as conn:
        rows = conn.execute(select(gridcard_cells.c.position).where(
            gridcard_cells.c.card_id == card.record.id, gridcard_cells.c.used_at.is_not(None)))
        return {row.position for row in rows}


def test_the_app_alone_signs_in_with_the_asked_cell(stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    attempt = started(http)
    assert attempt["state"] == "pending" and attempt["code"] is None
    assert attempt["serial"] == cards.gridcard.format_serial(card.record.serial)
    assert attempt["organisation"] == "Example Bank" and attempt["application"] is None
    assert attempt["window_seconds"] == 60  # no history yet: the rule's default
    assert attempt["position_expires_at"] == pytest.approx(stack.clock() + 60)
    stack.clock.advance(12)
    done = answer(http, attempt, cell_at(card, attempt["position"]))
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "authenticated"
    assert used_positions(stack, card) == {attempt["position"]}
    # The same party sending the same cell again (its reply was lost) is answered the same.
    again = answer(http, attempt, cell_at(card, attempt["position"]))
    assert again.status_code == 200 and again.json()["state"] == "authenticated"
    with stack.rt.read() as conn:
        entries = search_audit(conn, challenge_id=attempt["attempt_id"])
    assert [(e["event"], e["reason"]) for e in reversed(entries)] == [
        ("gridcard.start", "started"), ("gridcard.answer", "authenticated")]


def test_a_wrong_password_gives_no_position_and_counts(stack: Stack, http: httpx.Client) -> None:
    issue(stack)
    refused = sign_in(http, password="wrong horse")
    assert refused.status_code == 401 and code_of(refused) == "bad_credentials"
    assert "position" not in refused.json()
    assert failures(stack) == 1
    unknown = sign_in(http, login="mallory")
    assert unknown.status_code == 401 and code_of(unknown) == "bad_credentials"


def test_wrong_answers_are_refused_with_their_codes(stack: Stack, http: httpx.Client) -> None:
    card, theirs = issue(stack), issue(stack, login="bob")
    attempt = started(http)
    asked = attempt["position"]
    wrong = answer(http, attempt, other_cell(card, asked))
    assert wrong.status_code == 401 and code_of(wrong) == "wrong_cell"
    another_card = answer(http, attempt, cell_at(theirs, asked))
    assert another_card.status_code == 403 and code_of(another_card) == "wrong_card"
    cell = parse_cell(cell_at(card, asked))
    forged = f"QGA1:{cell.serial}:{asked}:{'0' * 24}"
    assert code_of(answer(http, attempt, forged)) == "bad_signature"
    malformed = answer(http, attempt, "HELLO WORLD")
    assert malformed.status_code == 400 and code_of(malformed) == "malformed_code"
    # Three cells were wrong (the user's count); a text that is no cell counts only against
    # the attempt, and the fourth failure of this attempt is still below its limit of five.
    assert failures(stack) == 3
    ok = answer(http, attempt, cell_at(card, asked))
    assert ok.status_code == 200 and failures(stack) == 0


def test_a_used_cell_replayed_on_a_new_attempt_is_refused(
        stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    first = started(http)
    used = cell_at(card, first["position"])
    assert answer(http, first, used).status_code == 200
    second = started(http)
    assert second["position"] != first["position"]
    replay = answer(http, second, used)
    assert replay.status_code == 409 and code_of(replay) == "cell_used"


def test_used_cells_are_not_asked_again_and_a_spent_card_is_refused(
        stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    with stack.rt.engine.begin() as conn:
        conn.execute(update(gridcard_cells).where(gridcard_cells.c.card_id == card.record.id,
                                                  gridcard_cells.c.position != "D3")
                     .values(used_at=stack.clock()))
    for _ in range(3):
        assert started(http)["position"] == "D3"
    listed = http.get("/v1/gridcard/cards", params={"login": "alice"},
                      headers={"Authorization": f"Bearer {stack.api_key}"}).json()
    assert listed["items"][0]["near_exhaustion"] is True
    attempt = started(http)
    assert answer(http, attempt, cell_at(card, "D3")).status_code == 200
    spent = sign_in(http)
    assert spent.status_code == 409 and code_of(spent) == "card_exhausted"


def test_late_answers_and_reissues_within_the_bound(stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    attempt = started(http)
    early = reissue(http, attempt)
    assert early.status_code == 409 and code_of(early) == "window_open"
    stack.clock.advance(61)
    late = answer(http, attempt, cell_at(card, attempt["position"]))
    assert late.status_code == 410 and code_of(late) == "late_answer"
    assert failures(stack) == 0  # a late answer is not checked, so not counted
    moved = reissue(http, attempt)
    assert moved.status_code == 200, moved.text
    second = moved.json()
    assert second["position"] != attempt["position"]
    assert second["position_seq"] == 1 and second["reissues_left"] == 1
    stack.clock.advance(61)
    assert reissue(http, attempt).status_code == 200
    stack.clock.advance(61)
    past = reissue(http, attempt)
    assert past.status_code == 409 and code_of(past) == "reissue_limit"
    state = http.get(f"/v1/gridcard/attempts/{attempt['attempt_id']}",
                     headers={TOKEN: attempt["answer_token"]}).json()
    assert (state["state"], state["reason"]) == ("failed", "reissue_limit")


def test_the_window_follows_the_users_answer_times_and_the_risk(
        stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    for seconds in (8, 10, 12):
        attempt = started(http)
        stack.clock.advance(seconds)
        assert answer(http, attempt, cell_at(card, attempt["position"])).status_code == 200
    # 2 x median(8, 10, 12) + 10 = 30 s; high risk halves it, within the 20 s floor.
    assert started(http)["window_seconds"] == 30
    assert started(http, risk="high")["window_seconds"] == 20
    assert started(http, risk="low")["window_seconds"] == 45


def test_a_revoked_or_expired_card_is_refused(stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    attempt = started(http)
    cards.run_revoke(stack.rt, serial=card.record.serial, actor="test")
    revoked = answer(http, attempt, cell_at(card, attempt["position"]))
    assert revoked.status_code == 409 and code_of(revoked) == "card_revoked"
    none = sign_in(http)
    assert none.status_code == 409 and code_of(none) == "no_card"
    # The user's new card works; a cell of the old one says which card it is.
    new = issue(stack, days=1)
    fresh = started(http)
    old_cell = answer(http, fresh, cell_at(card, fresh["position"]))
    assert code_of(old_cell) == "card_revoked"
    assert answer(http, fresh, cell_at(new, fresh["position"])).status_code == 200
    stack.clock.advance(2 * 86_400)
    expired = sign_in(http)
    assert expired.status_code == 410 and code_of(expired) == "card_expired"


def test_failures_lock_the_user_across_attempts(stack_factory: Any) -> None:
    stack: Stack = stack_factory(user_max_failures=3)
    card = issue(stack)
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        first = started(http)
        assert code_of(answer(http, first, other_cell(card, first["position"]))) == "wrong_cell"
        second = started(http)  # a new attempt does not reset the count
        assert code_of(answer(http, second, other_cell(card, second["position"]))) == "wrong_cell"
        assert code_of(sign_in(http, password="nope")) == "bad_credentials"
        locked = sign_in(http)
        assert locked.status_code == 423 and code_of(locked) == "user_locked"


def test_another_party_cannot_act_on_an_attempt(stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    attempt = started(http)
    cell = cell_at(card, attempt["position"])
    stolen = http.post(f"/v1/gridcard/attempts/{attempt['attempt_id']}/answer",
                       json={"cell": cell}, headers={TOKEN: "x" * 43})
    assert stolen.status_code == 403 and code_of(stolen) == "wrong_attempt_token"
    bare = http.post(f"/v1/gridcard/attempts/{attempt['attempt_id']}/answer", json={"cell": cell})
    assert bare.status_code == 401 and code_of(bare) == "missing_credentials"
    rival = http.get(f"/v1/gridcard/attempts/{attempt['attempt_id']}",
                     headers={"Authorization": f"Bearer {stack.other.api_key}"})
    assert rival.status_code == 404 and code_of(rival) == "attempt_not_found"
    assert failures(stack) == 0


def test_a_relying_party_starts_and_the_app_joins_by_its_code(
        stack: Stack, http: httpx.Client) -> None:
    card = issue(stack)
    rp = {"Authorization": f"Bearer {stack.api_key}"}
    response = http.post("/v1/gridcard/attempts", headers=rp, json={
        "login": "alice", "password": PASSWORD, "operation": "payment", "risk": "high",
        "requester": {"ip": "81.2.69.160", "user_agent": "Firefox"}})
    assert response.status_code == 201, response.text
    attempt = response.json()
    assert attempt["application"] == "Web banking" and attempt["code"].startswith("QG1:")
    assert http.get(attempt["links"]["qr_png"], headers=rp).headers["content-type"] == "image/png"
    joined = http.post("/v1/gridcard/scan", json={"code": attempt["code"]})
    assert joined.status_code == 200, joined.text
    seen = joined.json()
    assert seen["position"] == attempt["position"]
    assert seen["service"]["application"] == "Web banking"
    assert seen["requester"] == {"ip": "81.2.69.160", "user_agent": "Firefox",
                                 "place": "internet"}
    with http.stream("GET", attempt["links"]["events"], headers=rp) as events:
        lines = events.iter_lines()
        first = _next_state(lines)
        assert first["state"] == "pending"
        done = answer(http, {**attempt, "answer_token": seen["answer_token"]},
                      cell_at(card, seen["position"]))
        assert done.status_code == 200, done.text
        assert _next_state(lines)["state"] == "authenticated"
    forged = http.post("/v1/gridcard/scan", json={"code": attempt["code"][:-4] + "AAAA"})
    assert forged.status_code in (400, 401)


def _next_state(lines: Iterator[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data: ") and "state" in line:
            event: dict[str, Any] = json.loads(line[len("data: "):])
            return event
    raise AssertionError("the stream ended")


def test_cards_over_the_api(stack: Stack, http: httpx.Client) -> None:
    rp = {"Authorization": f"Bearer {stack.api_key}"}
    issued = http.post("/v1/gridcard/cards", headers=rp, json={"login": "alice", "days": 30})
    assert issued.status_code == 201, issued.text
    assert issued.headers["content-type"] == "application/pdf"
    assert issued.content.startswith(b"%PDF")
    serial = issued.headers["qrgate-card-serial"]
    listed = http.get("/v1/gridcard/cards", headers=rp, params={"login": "alice"}).json()
    assert [item["serial"] for item in listed["items"]] == [serial]
    rival = http.post(f"/v1/gridcard/cards/{serial}/revoke",
                      headers={"Authorization": f"Bearer {stack.other.api_key}"})
    assert rival.status_code == 404
    revoked = http.post(f"/v1/gridcard/cards/{serial}/revoke", headers=rp)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    with stack.rt.read() as conn:
        assert conn.execute(select(gridcard_attempts)).first() is None


def test_the_starter_may_cancel_and_its_page_hears(stack: Stack, http: httpx.Client) -> None:
    issue(stack)
    attempt = started(http)
    url = f"/v1/gridcard/attempts/{attempt['attempt_id']}/cancel"
    for _ in range(2):  # cancelling again is answered the same
        cancelled = http.post(url, headers={TOKEN: attempt["answer_token"]})
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["state"], cancelled.json()["reason"]) == ("failed", "cancelled")
    assert code_of(reissue(http, attempt)) == "not_pending"
