"""Grid cards as a relying party manages them over the API: always within its own
organisation (another organisation's serials and logins are unknown to it), audited as
issued by ``relying_party`` with the application as actor."""

from __future__ import annotations

from dataclasses import dataclass

from qrgate.accounts import directory
from qrgate.core.gridcard import Layout
from qrgate.gridcard import cards
from qrgate.gridcard.printing import CardToPrint, render_pdf
from qrgate.runtime import Runtime


@dataclass(frozen=True, kw_only=True)
class PrintedCard:
    serial: str
    expires_at: float
    # The printable card: every cell in clear, handed to the caller and kept nowhere.
    pdf: bytes


def issue(rt: Runtime, *, app: directory.AppRecord, login: str, days: int | None) -> PrintedCard:
    pdf: list[bytes] = []

    def deliver(issued: cards.IssuedCard) -> None:
        # Rendered inside the transaction: a card whose PDF could not be made is not issued.
        pdf.append(render_pdf([CardToPrint(card=issued.card,
                                           expires_on=issued.record.expires_on())],
                              issuer=issued.issuer_name))

    issued = cards.run_issue(rt, org_slug=app.org_slug, login=login, layout=Layout(),
                             ttl_days=days or cards.DEFAULT_TTL_DAYS, issuer="relying_party",
                             actor=f"app:{app.business_id}", deliver=deliver)
    return PrintedCard(serial=issued.record.serial, expires_at=issued.record.expires_at,
                       pdf=pdf[0])


def list_for(rt: Runtime, *, app: directory.AppRecord, login: str | None) -> list[cards.CardRecord]:
    with rt.read() as conn:
        if login is None:
            return cards.list_org_cards(conn, app.org_id)
        user = directory.find_user(conn, org_id=app.org_id, login=login)
        return cards.list_cards(conn, user.id)


def revoke(rt: Runtime, *, app: directory.AppRecord, serial: str) -> cards.CardRecord:
    return cards.run_revoke(rt, serial=serial, actor=f"app:{app.business_id}",
                            org_id=app.org_id)

