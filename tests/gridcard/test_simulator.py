"""The scheme A phone simulator (qrgate.clients.gridcard) against a real server, on SQLite
and PostgreSQL: it signs in by reading the asked cell out of a real rendered card page and
out of a photo of it; a late answer gets another position, within the attempt's bound; it
joins a relying party's attempt by its code while the relying party follows the events;
and every refusal reaches the caller as the server's stable code."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from PIL.Image import Image

from qrgate.clients.gridcard import (
    GridcardPhone,
    Started,
    answer_with_card,
    authenticate_with_card,
)
from qrgate.clients.gridcard_card import photo_like, read_cells, render_page
from qrgate.clients.phone import decode_png
from qrgate.clients.relying_party import ApiError
from qrgate.core.gridcard import Layout, format_serial
from qrgate.core.gridcard_attempt import AttemptState
from qrgate.errors import Malformed
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.gridcard.printing import CardToPrint, render_pdf
from qrgate.qrimage import render_png
from support.stack import PASSWORD, Clock, Stack


def issue_card(stack: Stack, login: str = "alice") -> tuple[IssuedCard, bytes]:
    """A card for ``login`` of the bank, and its printable PDF."""
    issued = cards.run_issue(stack.rt, org_slug="bank", login=login, layout=Layout(),
                             ttl_days=365, issuer="operator", actor="test")
    pdf = render_pdf([CardToPrint(card=issued.card, expires_on=issued.record.expires_on())],
                     issuer=issued.issuer_name)
    return issued, pdf


def card_page(stack: Stack) -> tuple[IssuedCard, Image]:
    issued, pdf = issue_card(stack)
    return issued, render_page(pdf)


def phone_of(stack: Stack, lines: list[str] | None = None) -> GridcardPhone:
    phone = GridcardPhone(stack.base_url, show=(lines if lines is not None else []).append)
    stack.closers.append(phone.close)
    return phone


@pytest.mark.parametrize("view", ["page", "photo"])
def test_signs_in_with_the_cell_read_from_the_card(stack: Stack, view: str) -> None:
    issued, page = card_page(stack)
    image = photo_like(page) if view == "photo" else page
    lines: list[str] = []
    attempt = authenticate_with_card(phone_of(stack, lines), organisation="bank",
                                     login="alice", password=PASSWORD, card_image=image)
    assert attempt.state is AttemptState.AUTHENTICATED
    assert attempt.reason == "authenticated" and attempt.decided_at is not None
    assert attempt.serial == format_serial(issued.record.serial)
    assert (attempt.login, attempt.organisation, attempt.application) == (
        "alice", "Example Bank", None)
    assert attempt.position_seq == 0
    assert lines == [f"asked for cell {attempt.position} of card {attempt.serial} "
                     f"({attempt.window_seconds} s)",
                     f"cell {attempt.position} found on the card",
                     "result: authenticated"]
    with stack.rt.read() as conn:
        card = cards.find_card(conn, issued.record.serial)
    assert card.used_cells == 1


def test_a_late_answer_gets_another_position(stack: Stack, clock: Clock) -> None:
    _, page = card_page(stack)
    lines: list[str] = []
    phone = phone_of(stack, lines)
    started = phone.sign_in(organisation="bank", login="alice", password=PASSWORD)
    first = started.attempt
    clock.advance(first.window_seconds + 1)  # the user looked for the card too long

    attempt = answer_with_card(phone, started, page)

    assert attempt.state is AttemptState.AUTHENTICATED
    assert attempt.position_seq == 1 and attempt.reissues_left == first.reissues_left - 1
    assert f"too late for {first.position}: asking for another position " \
           f"({first.reissues_left} left)" in lines
    assert lines[-1] == "result: authenticated"


def test_no_other_position_past_the_bound(stack: Stack, clock: Clock) -> None:
    _, page = card_page(stack)
    phone = phone_of(stack)
    started = phone.sign_in(organisation="bank", login="alice", password=PASSWORD,
                            risk="high")
    attempt, token = started.attempt, started.answer_token
    while attempt.reissues_left:
        clock.advance(attempt.window_seconds + 1)
        attempt = phone.reissue(attempt.attempt_id, answer_token=token)
    clock.advance(attempt.window_seconds + 1)

    # No reissue left: the simulator gives up with the server's code instead of asking, and
    # the server ends the attempt, which nothing can now complete.
    with pytest.raises(ApiError) as late:
        answer_with_card(phone, Started(attempt=attempt, answer_token=token), page)
    assert (late.value.status, late.value.code) == (410, "late_answer")
    ended = phone.get(attempt.attempt_id, answer_token=token)
    assert (ended.state, ended.reason) == (AttemptState.FAILED, "late_answer")
    with pytest.raises(ApiError) as limit:
        phone.reissue(attempt.attempt_id, answer_token=token)
    assert limit.value.code == "not_pending"


def test_joins_a_relying_partys_attempt_by_its_code(stack: Stack) -> None:
    _, page = card_page(stack)
    photo = photo_like(page, seed=7)
    started = stack.rp.start_gridcard("alice", PASSWORD, requester_ip="198.51.100.20",
                                      requester_ua="Firefox on Linux")
    assert started["code"].startswith("QG1:") and started["application"] == "Web banking"
    seen: list[dict[str, Any]] = []
    listener = threading.Thread(
        target=lambda: seen.extend(stack.rp.gridcard_events(started["attempt_id"])),
        daemon=True)
    listener.start()
    lines: list[str] = []
    phone = phone_of(stack, lines)

    joined = phone.scan_code(decode_png(render_png(started["code"])))
    assert joined.attempt.attempt_id == started["attempt_id"]
    assert joined.attempt.position == started["position"]
    assert joined.service is not None and joined.requester is not None
    assert (joined.service.organisation, joined.service.application) == (
        "Example Bank", "Web banking")
    assert joined.requester.ip == "198.51.100.20"
    assert lines[0] == "Example Bank / Web banking (https://bank.example) asks alice to sign in"

    attempt = answer_with_card(phone, joined, photo)
    listener.join(timeout=10)
    assert not listener.is_alive()
    assert attempt.state is AttemptState.AUTHENTICATED
    assert seen[-1]["state"] == "authenticated" and seen[-1]["attempt_id"] == attempt.attempt_id
    assert stack.rp.get_gridcard(attempt.attempt_id)["state"] == "authenticated"


def test_refusals_carry_the_servers_code(stack: Stack) -> None:
    issued, page = card_page(stack)
    cells = read_cells(page, serial=issued.record.serial)
    phone = phone_of(stack)

    with pytest.raises(ApiError) as refused:
        phone.sign_in(organisation="bank", login="alice", password="wrong horse")
    assert (refused.value.status, refused.value.code) == (401, "bad_credentials")
    assert "position" not in refused.value.problem

    started = phone.sign_in(organisation="bank", login="alice", password=PASSWORD)
    other = next(label for label in cells if label != started.attempt.position)
    with pytest.raises(ApiError) as refused:
        phone.answer(started.attempt.attempt_id, answer_token=started.answer_token,
                     cell=cells[other])
    assert (refused.value.status, refused.value.code) == (401, "wrong_cell")

    accepted = answer_with_card(phone, started, page)
    again = phone.sign_in(organisation="bank", login="alice", password=PASSWORD)
    with pytest.raises(ApiError) as refused:
        phone.answer(again.attempt.attempt_id, answer_token=again.answer_token,
                     cell=cells[accepted.position])
    assert (refused.value.status, refused.value.code) == (409, "cell_used")

    with pytest.raises(ApiError) as refused:
        phone.sign_in(organisation="bank", login="bob", password=PASSWORD)
    assert (refused.value.status, refused.value.code) == (409, "no_card")


def test_an_answer_that_is_not_an_attempt_is_malformed() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"attempt_id": "0" * 32, "state": "pending"})

    with GridcardPhone("http://qrgate.test", transport=httpx.MockTransport(server)) as phone, \
            pytest.raises(Malformed, match="lacks 'reason'"):
        phone.sign_in(organisation="bank", login="alice", password=PASSWORD)
