"""``qrgate phone gridcard`` against a real server, with the card as its PDF, a PNG of the
page and a photo of it; refusals exit 1 with the server's code and no traceback. And
``qrgate demo gridcard`` runs every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qrgate.cli.main import cli
from qrgate.clients.gridcard_card import render_page
from qrgate.core.gridcard import Layout
from qrgate.gridcard import cards
from qrgate.gridcard.printing import CardToPrint, render_pdf
from support.stack import PASSWORD, Stack


def write_card(stack: Stack, directory: Path, name: str = "card.pdf") -> Path:
    issued = cards.run_issue(stack.rt, org_slug="bank", login="alice", layout=Layout(),
                             ttl_days=365, issuer="operator", actor="test")
    pdf = directory / name
    pdf.write_bytes(render_pdf([CardToPrint(card=issued.card,
                                            expires_on=issued.record.expires_on())],
                               issuer=issued.issuer_name))
    return pdf


def sign_in(stack: Stack, *options: str, password: str = PASSWORD) -> Result:
    return CliRunner().invoke(cli, ["phone", "gridcard", "--server", stack.base_url,
                                    "--org", "bank", "--login", "alice", "--password-stdin",
                                    *options], input=f"{password}\n")


def assert_refused(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert f"qrgate: error: {message}" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("photo", [False, True], ids=["pdf", "pdf-photo"])
def test_signs_in_with_the_card_pdf(stack: Stack, tmp_path: Path, photo: bool) -> None:
    pdf = write_card(stack, tmp_path)
    result = sign_in(stack, "--card", str(pdf), *(["--photo"] if photo else []))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == "signing in as alice at bank"
    assert lines[2].startswith("asked for cell ") and lines[3].endswith(" found on the card")
    assert lines[-1] == "result: authenticated"


def test_signs_in_with_a_png_of_the_card(stack: Stack, tmp_path: Path) -> None:
    png = tmp_path / "card.png"
    render_page(write_card(stack, tmp_path).read_bytes()).save(png)
    result = CliRunner().invoke(cli, ["phone", "gridcard", "--server", stack.base_url,
                                      "--org", "bank", "--login", "alice",
                                      "--password", PASSWORD, "--card", str(png)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "result: authenticated"


def test_refusals_exit_1_with_the_servers_code(stack: Stack, tmp_path: Path) -> None:
    pdf = write_card(stack, tmp_path)
    assert_refused(sign_in(stack, "--card", str(pdf), password="wrong horse"),
                   "bad_credentials: ")
    # A new card replaced the printed one: the asked card is not in the picture.
    write_card(stack, tmp_path, "new.pdf")
    assert_refused(sign_in(stack, "--card", str(pdf)), "unreadable_image: card ")


def test_unusable_card_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "card.txt"
    text.write_text("not a card")
    server = "http://127.0.0.1:9"  # never reached: the card is read first
    options = ["phone", "gridcard", "--server", server, "--org", "bank", "--login", "alice"]
    runner = CliRunner()
    assert_refused(runner.invoke(cli, [*options, "--password", "x", "--card", str(text)]),
                   f"{text} is neither a PDF nor an image")
    pdf = tmp_path / "card.pdf"
    pdf.write_bytes(b"%PDF-1.4 truncated")
    assert_refused(runner.invoke(cli, [*options, "--password", "x", "--card", str(pdf)]),
                   f"cannot read the PDF {pdf}")
    missing = runner.invoke(cli, [*options, "--card", str(text)])
    assert missing.exit_code == 2
    assert "give --password or --password-stdin" in missing.stderr


def test_page_out_of_range(stack: Stack, tmp_path: Path) -> None:
    pdf = write_card(stack, tmp_path)
    assert_refused(sign_in(stack, "--card", str(pdf), "--page", "3"),
                   "invalid_field: the PDF has 1 page(s); no page 3")


def test_demo_gridcard_passes() -> None:
    result = CliRunner().invoke(cli, ["demo", "gridcard"])
    assert result.exit_code == 0, result.output
    assert "demo gridcard: all steps passed" in result.output
    assert "FAILED" not in result.output
    for refused in ("401 bad_credentials", "401 wrong_cell", "409 cell_used", "409 no_card"):
        assert f"refused with {refused}" in result.output
    assert "the bank's event stream: pending -> authenticated" in result.output
