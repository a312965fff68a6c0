"""``qrgate gridcard issue|reissue|list|revoke``: the operator issues a card as a PDF whose
codes decode to the stored card, or cards to every user who has none as PDF volumes with a
manifest, replaces a card, lists a user's cards, revokes one; failures are one line."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pypdfium2 as pdfium
from click.testing import CliRunner, Result
from PIL import Image
from sqlalchemy import select

from qrgate.accounts import directory
from qrgate.cli.main import cli
from qrgate.clients.gridcard_card import read_cards, read_cells, render_page
from qrgate.core.gridcard import Layout, format_serial, normalize_serial, parse_cell
from qrgate.gridcard import cards
from qrgate.qrimage import decode_image
from qrgate.storage.audit import search_audit
from qrgate.storage.models import gridcard_cells, gridcards, organisations, users
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


# --- issue --count, reissue ------------------------------------------------------------------


def add_users(stack: Stack, *logins: str) -> None:
    with stack.rt.engine.begin() as conn:
        org_id = directory.org_id_by_slug(conn, "bank")
        for login in logins:
            directory.create_user(conn, org_id=org_id, login=login, now=stack.clock())


def active_serials(stack: Stack) -> dict[str, str]:
    """login -> serial of the user's active card, in every organisation."""
    with stack.rt.read() as conn:
        rows = conn.execute(select(users.c.login, organisations.c.slug, gridcards.c.serial)
                            .join(gridcards, gridcards.c.user_id == users.c.id)
                            .join(organisations, organisations.c.id == users.c.org_id)
                            .where(gridcards.c.status == "active"))
        return {f"{row.slug}/{row.login}": row.serial for row in rows}


def test_issue_count_prints_volumes_for_the_users_without_a_card(
        stack: Stack, tmp_path: Path) -> None:
    add_users(stack, "dave", "erin", "frank", "grace")  # with alice, bob, carol: 7 users
    for login in ("bob", "erin"):
        cards.run_issue(stack.rt, org_slug="bank", login=login, layout=Layout(),
                        ttl_days=365, issuer="operator", actor="test")
    before = active_serials(stack)
    out = tmp_path / "run" / "cards"

    result = invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--count", "5",
                    "--out", str(out), "--days", "30", "--cards-per-volume", "3")
    summary = ok(result)
    assert "Issuing grid cards" in result.stderr
    volumes = [out / "cards-0001.pdf", out / "cards-0002.pdf"]
    assert summary == {"issued": 5, "files": [str(path) for path in volumes],
                       "manifest": str(out / "manifest.csv")}
    assert sorted(out.iterdir()) == sorted([*volumes, out / "manifest.csv"])
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700

    with (out / "manifest.csv").open(newline="") as file:
        manifest = list(csv.DictReader(file))
    assert [(row["login"], row["file"], row["page"]) for row in manifest] == [
        ("alice", "cards-0001.pdf", "1"), ("carol", "cards-0001.pdf", "1"),
        ("dave", "cards-0001.pdf", "1"), ("frank", "cards-0002.pdf", "1"),
        ("grace", "cards-0002.pdf", "1")]
    after = active_serials(stack)
    # The carded two keep their cards; the other organisation is not touched.
    assert after == {**before, **{f"bank/{row['login']}": normalize_serial(row["serial"])
                                  for row in manifest}}
    assert all(row["expires_at"].endswith("Z") for row in manifest)

    with stack.rt.read() as conn:
        digests = {row.serial: {cell.position: bytes(cell.digest) for cell in conn.execute(
            select(gridcard_cells).where(gridcard_cells.c.card_id == row.id))}
            for row in conn.execute(select(gridcards))}
        audited = {entry["detail"]["serial"]: entry for entry in
                   search_audit(conn, event="gridcard.issue")}
    for path in volumes:
        on_page = read_cards(render_page(path.read_bytes()))
        listed = {normalize_serial(row["serial"]) for row in manifest if row["file"] == path.name}
        assert set(on_page) == listed
        for serial, cells in on_page.items():
            assert {label: stack.rt.digests.digest(content, purpose="gridcard_cell")
                    for label, content in cells.items()} == digests[serial]
            entry = audited[serial]
            assert (entry["reason"], entry["detail"]["actor"], entry["detail"]["issued_by"],
                    entry["detail"]["replaced"]) == ("issued", "cli", "operator", None)

    # Up to COUNT, by login; users with a card, and frozen users, are left alone.
    add_users(stack, "zoe", "yann", "xena")
    with stack.rt.engine.begin() as conn:
        xena = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, "bank"),
                                   login="xena")
        directory.set_frozen(conn, user_id=xena.id, frozen=True, now=stack.clock())
    summary = ok(invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--count", "1",
                        "--out", str(tmp_path / "second")))
    assert summary == {"issued": 1, "files": [str(tmp_path / "second" / "cards-0001.pdf")],
                       "manifest": str(tmp_path / "second" / "manifest.csv")}
    assert set(active_serials(stack)) - set(after) == {"bank/yann"}


def test_issue_count_refusals_are_one_line_and_issue_nothing(
        stack: Stack, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old.pdf").write_bytes(b"%PDF")
    cases = [
        (("--count", "5", "--login", "alice", "--out", str(tmp_path / "a")),
         "qrgate: error: give exactly one of --login and --count (see "),
        (("--out", str(tmp_path / "b")), "qrgate: error: give exactly one of --login and "),
        (("--login", "alice", "--out", str(tmp_path / "c.pdf"), "--cards-per-volume", "3"),
         "qrgate: error: --cards-per-volume goes with --count"),
        (("--count", "5", "--out", str(busy)),
         f"qrgate: error: cannot write {busy}: the directory is not empty"),
        (("--count", "5", "--out", str(busy / "old.pdf")),
         f"qrgate: error: cannot write {busy / 'old.pdf'}: not a directory"),
        (("--count", "0", "--out", str(tmp_path / "d")), "qrgate: error: invalid value"),
        (("--count", "5", "--org", "nowhere", "--out", str(tmp_path / "e")),
         "qrgate: error: org_not_found: "),
    ]
    for args, start in cases:
        result = invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", *args)
        assert result.exit_code in {1, 2}, (args, result.output)
        assert result.stderr.startswith(start), (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert result.stdout == ""
    assert sorted(path.name for path in busy.iterdir()) == ["old.pdf"]
    assert not any((tmp_path / name).exists() for name in ("a", "b", "c.pdf", "d"))
    assert list((tmp_path / "e").iterdir()) == []
    assert active_serials(stack) == {}


def test_reissue_replaces_a_card_and_refuses_a_user_without_one(
        stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "alice.pdf"
    refused = invoke(stack, tmp_path, "gridcard", "reissue", "--org", "bank", "--login",
                     "alice", "--out", str(out))
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith("qrgate: error: no_card: alice has no card to replace")
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.output
    assert not out.exists()
    assert active_serials(stack) == {}
    with stack.rt.read() as conn:
        assert [entry["reason"] for entry in search_audit(conn, event="gridcard.issue")] == [
            "no_card"]

    first = ok(invoke(stack, tmp_path, "gridcard", "issue", "--org", "bank", "--login",
                      "alice", "--out", str(tmp_path / "first.pdf")))
    again = ok(invoke(stack, tmp_path, "gridcard", "reissue", "--org", "bank", "--login",
                      "alice", "--out", str(out), "--days", "30"))
    assert isinstance(first, dict) and isinstance(again, dict)
    assert again["replaced"] == first["serial"] and again["pdf"] == str(out)
    assert active_serials(stack) == {"bank/alice": normalize_serial(str(again["serial"]))}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert set(read_cells(render_page(out.read_bytes()), str(again["serial"]))) == {
        f"{row}{column}" for row in "ABCDEF" for column in "12345"}
