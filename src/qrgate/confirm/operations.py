"""The sensitive-operation endpoint's side of scheme C (SPEC steps 601-603).

A relying party's backend, authenticated by its API key, asks to confirm an operation for a
login. We resolve the user, route to a verifier (603), create the challenge with its first
verification code and the browser-binding secret, and hand back what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id, new_secret
from qrgate.confirm import qr_server, repository
from qrgate.confirm.repository import ChallengeRow
from qrgate.confirm.verifiers import available_verifiers
from qrgate.core.confirm import (
    VERIFICATION_CODE_BYTES,
    ConfirmState,
    new_number,
    new_verification_code,
)
from qrgate.core.policy import VerifierKind, choose_verifier
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import InvalidField
from qrgate.runtime import Runtime


@dataclass(frozen=True, kw_only=True)
class StartRequest:
    login: str
    operation: str
    source: str = ""
    amount: str | None = None
    currency: str | None = None
    content: str = ""
    business_id: str | None = None
    url: str | None = None
    requester_ip: str = ""
    requester_ua: str = ""
    verifier: VerifierKind | None = None
    # A relying party may ask for number matching; it can never switch a policy's off.
    number_matching: bool = False


@dataclass(frozen=True, kw_only=True)
class Started:
    challenge: ChallengeRow
    code: str | None
    browser_token: str


def start(rt: Runtime, *, app: directory.AppRecord, request: StartRequest) -> Started:
    now = rt.clock()
    amount = _amount(request.amount)
    subject = AuditSubject(event="confirm.start", scheme="confirm", org_id=app.org_id,
                           app_id=app.id, detail={"operation": request.operation})

    def work(conn: Connection) -> tuple[Started, str]:
        target_app = directory.resolve_app(conn, app=app, business_id=request.business_id)
        subject.app_id = target_app.id
        user = directory.find_user(conn, org_id=app.org_id, login=request.login)
        subject.user_id = user.id
        directory.ensure_not_frozen(user)
        directory.ensure_not_locked(user, max_failures=rt.settings.user_max_failures)
        directory.ensure_not_blocked(user, now=now)
        policy = target_app.policy
        verifier = choose_verifier(
            policy=policy,
            operation=request.operation,
            requested=request.verifier,
            user_preference=user.preferred_verifier,
            available=available_verifiers(conn, user),
        )
        matching = verifier == VerifierKind.QR and (
            request.number_matching
            or policy.needs_number_matching(operation=request.operation, amount=amount)
        )
        ttl = min(policy.confirm_ttl or rt.settings.confirm_ttl, rt.settings.confirm_ttl)
        challenge_id, browser_token = new_id(), new_secret()
        subject.challenge_id = challenge_id
        scene = {
            "source": request.source,
            "operation": request.operation,
            "amount": _display_amount(request.amount, request.currency),
            "content": request.content,
        }
        row = repository.insert_challenge(
            conn,
            id=challenge_id,
            org_id=app.org_id,
            app_id=target_app.id,
            user_id=user.id,
            login=user.login,
            business_id=target_app.business_id,
            scene=scene,
            search_text=" ".join(
                str(v) for v in (user.login, *scene.values(), target_app.business_id) if v
            ).lower(),
            url=request.url,
            verifier=verifier.value,
            state=ConfirmState.PENDING.value,
            number=new_number(rt.random(4)) if matching else None,
            code_nonce=new_verification_code(rt.random(VERIFICATION_CODE_BYTES)),
            code_seq=0,
            code_expires_at=min(int(now) + rt.settings.code_ttl, now + ttl),
            browser_hash=rt.digests.digest(browser_token, purpose="browser_token"),
            requester_ip=request.requester_ip,
            requester_ua=request.requester_ua,
            attempts=0,
            created_at=now,
            expires_at=now + ttl,
        )
        code = qr_server.code_for(rt, row) if verifier == VerifierKind.QR else None
        subject.detail["verifier"] = verifier.value
        return Started(challenge=row, code=code, browser_token=browser_token), "started"

    return run_decision(rt, subject=subject, now=now, work=work)


def _amount(raw: str | None) -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidField("amount must be a decimal number", code="invalid_amount") from None
    if not value.is_finite() or value < 0:
        raise InvalidField("amount must be a non-negative number", code="invalid_amount")
    return value


def _display_amount(amount: str | None, currency: str | None) -> str | None:
    if amount is None:
        return None
    return f"{amount} {currency}" if currency else amount
