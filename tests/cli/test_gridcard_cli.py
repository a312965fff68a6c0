"""``qrgate gridcard issue|list|revoke``: the operator issues a card as a PDF whose codes
decode to the stored card, lists a user's cards, revokes one; failures are one line."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pypdfium2 as pdfium
from click.testing import CliRunner, Result
from PIL import Image
from sqlalchemy import select

from qrgate.cli.main import cli
from qrgate.core.gridcard import format_serial, normalize_serial, parse_cell
from qrgate.qrimage import decode_image
from qrgate.storage.audit import search_audit
from qrgate.storage.models import gridcard_cells, gridcards
from support.stack import Stack


def invoke(stack: Stack, tmp_path: Path, *args: str) -> Result:
    # The operator's commands open the stack's own database and keys (its data directory).
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data"),
           "QRGATE_DATABASE_URL": stack.rt.settings.database_url}
    return CliRunner().invoke(cli, list(args), env=env)


def ok(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def decoded_cells(pdf: Path) -> list[str]:
    """Every code on the PDF's first page, rendered at 150 dpi as a printer would."""
    document = pdfium.PdfDocument(pdf.read_bytes())
    try:
        page: Image.Image = document[0].render(scale=150 / 72).to_pil().convert("L")
    finally:
        document.close()
    png = io.BytesIO()
    page.save(png, format="PNG")
    return [code.text for code in decode_image(png.getvalue())]


def test_issue_writes_a_private_pdf_of_the_stored_card(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "alice.pdf"
    issued = ok(invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--login",
                       "alice", "--out", str(out), "--days", "30"))
    assert isinstance(issued, dict)
    assert set(issued) == {"login", "serial", "expires_at", "replaced", "pdf"}
    assert issued["replaced"] is None and str(issued["expires_at"]).endswith("Z")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with stack.rt.read() as conn:
        (card,) = conn.execute(select(gridcards)).all()
        stored = {row.position: bytes(row.digest) for row in conn.execute(
            select(gridcard_cells).where(gridcard_cells.c.card_id == card.id))}
    assert normalize_serial(str(issued["serial"])) == card.serial
    texts = decoded_cells(out)
    assert len(texts) == 30
    for text in texts:
        cell = parse_cell(text)
        assert cell.serial == card.serial
        assert stored[cell.position.label] == stack.rt.digests.digest(
            text, purpose="gridcard_cell")
    assert {parse_cell(text).position.label for text in texts} == set(stored)

    # Never over an existing file; the card is not issued then.
    again = invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--login", "alice",
                   "--out", str(out))
    assert again.exit_code == 1
    assert again.stderr.startswith("qrgate: error: cannot write ")
    with stack.rt.read() as conn:
        assert len(conn.execute(select(gridcards)).all()) == 1


def test_list_and_revoke(stack: Stack, tmp_path: Path) -> None:
    first = ok(invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--login",
                      "alice", "--out", str(tmp_path / "1.pdf")))
    second = ok(invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--login",
                       "alice", "--out", str(tmp_path / "2.pdf")))
    assert isinstance(first, dict) and isinstance(second, dict)
    assert second["replaced"] == first["serial"]
    listed = ok(invoke(stack, tmp_path, "gridcard", "list", "--org", "bank", "--login",
                       "alice"))
    assert isinstance(listed, list)
    assert [(c["serial"], c["status"], c["used_cells"], c["near_exhaustion"])
            for c in listed] == [(second["serial"], "active", 0, False),
                                 (first["serial"], "revoked", None, False)]
    assert listed[0]["expires_at"] == second["expires_at"]
    assert all(str(c["created_at"]).endswith("Z") for c in listed)

    revoked = ok(invoke(stack, tmp_path, "gridcard", "revoke", str(second["serial"]).lower()))
    assert isinstance(revoked, dict) and str(revoked.pop("revoked_at")).endswith("Z")
    assert revoked == {"serial": second["serial"], "status": "revoked"}
    listed = ok(invoke(stack, tmp_path, "gridcard", "list", "--org", "bank", "--login",
                       "alice"))
    assert isinstance(listed, list) and [c["status"] for c in listed] == ["revoked"] * 2
    with stack.rt.read() as conn:
        entries = search_audit(conn, event="gridcard.revoke")
    assert [(e["reason"], e["detail"]["actor"]) for e in entries] == [("revoked", "cli")]


def test_failures_are_one_line(stack: Stack, tmp_path: Path) -> None:
    unknown_serial = format_serial("0000000000")
    cases = [
        (("gridcard", "revoke", unknown_serial), "qrgate: error: not_found: "),
        (("gridcard", "revoke", "nonsense"), "qrgate: error: invalid_field: "),
        (("gridcard", "list", "--org", "bank", "--login", "nobody"),
         "qrgate: error: user_not_found: "),
        (("gridcard", "issue", "--org", "bank", "--login", "nobody", "--out",
          str(tmp_path / "nobody.pdf")), "qrgate: error: user_not_found: "),
    ]
    for args, start in cases:
        result = invoke(stack, tmp_path, *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(start), (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "nobody.pdf").exists()
