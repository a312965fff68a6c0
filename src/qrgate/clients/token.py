"""The software OCRA token of scheme E, as the phone app holds it (SPEC E, S2).

It is enrolled once from a QR that carries its secret, activates itself by answering the
server's activation question, and signs a transaction by reading the signed challenge code,
showing the transaction, and answering the OCRA question it recomputes from what it shows
(never a question it is merely told): the response signs exactly the shown transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from qrgate.clients.relying_party import raise_for_problem
from qrgate.core import ocra
from qrgate.core.keyring import PublicKeySet
from qrgate.core.txsign import ChallengeCode, read_challenge_code, transaction_digest
from qrgate.errors import Rejected, UnknownKey
from qrgate.txsign.tokens import activation_question, read_enrolment_code


@dataclass
class SoftToken:
    token_id: str
    secret: bytes
    suite: str
    counter: int
    server_url: str
    login: str
    server_keys: PublicKeySet
    clock: Callable[[], float] = time.time
    show: Callable[[str], None] = field(default=lambda line: None)

    @classmethod
    def enrol(
        cls,
        code: str,
        *,
        server_keys: PublicKeySet,
        clock: Callable[[], float] = time.time,
        show: Callable[[str], None] = lambda line: None,
        transport: httpx.BaseTransport | None = None,
    ) -> SoftToken:
        """Read the enrolment code (signature checked offline) and activate the token."""
        enrolment = read_enrolment_code(code, keys=server_keys, now=clock())
        token = cls(token_id=enrolment.token_id, secret=enrolment.secret,
                    suite=enrolment.suite, counter=enrolment.counter,
                    server_url=enrolment.server_url, login=enrolment.login,
                    server_keys=server_keys, clock=clock, show=show)
        response = token._respond(activation_question(token.token_id))
        # Kept only for this activation: it lets a retry after a lost reply be recognised.
        client_id = secrets.token_urlsafe(24)
        with httpx.Client(base_url=token.server_url, transport=transport) as http:
            result = http.post(f"/v1/txsign/tokens/{token.token_id}/activate",
                               json={"response": response, "client_id": client_id})
        raise_for_problem(result)
        show(f"[token {token.token_id[:8]}] activated for {token.login}")
        return token

    def read(self, challenge_code: str) -> ChallengeCode:
        """Verify a challenge code offline; on a key id not seen yet (the server rotated)
        fetch the server's keys once more, as the phone does."""
        try:
            return read_challenge_code(challenge_code, keys=self.server_keys, now=self.clock())
        except UnknownKey:
            with httpx.Client(base_url=self.server_url, timeout=10) as http:
                response = http.get("/v1/keys")
            raise_for_problem(response)
            self.server_keys = PublicKeySet.from_jwks(response.json())
            return read_challenge_code(challenge_code, keys=self.server_keys, now=self.clock())

    def sign(self, challenge_code: str) -> str:
        """S2: verify, show, and answer the question recomputed from the shown transaction."""
        challenge = self.read(challenge_code)
        transaction = challenge.transaction
        if transaction.text.account != self.login:
            raise Rejected("this transaction is for another account", code="wrong_user")
        if challenge.suite != self.suite:
            raise Rejected("the challenge asks for another OCRA suite", code="bad_ocra_suite")
        self.show(f"[token {self.token_id[:8]}] sign for {transaction.text.account} on "
                  f"{transaction.text.platform}: {transaction.text.demand!r} "
                  f"(comment {transaction.text.comment!r})")
        question = ocra.question_for_digest(transaction_digest(transaction),
                                            ocra.parse_suite(self.suite))
        return self._respond(question)

    def _respond(self, question: str) -> str:
        suite = ocra.parse_suite(self.suite)
        counter = self.counter if suite.uses_counter else None
        time_step = int(self.clock()) // suite.time_step if suite.time_step else None
        response = ocra.respond(suite=suite, key=self.secret, question=question,
                                counter=counter, time_step=time_step)
        if suite.uses_counter:
            self.counter += 1
        return response

    def state(self) -> dict[str, Any]:
        """What the phone persists (the caller keeps it private: it holds the secret)."""
        return {"token_id": self.token_id, "secret": self.secret.hex(), "suite": self.suite,
                "counter": self.counter, "server_url": self.server_url, "login": self.login}

    @classmethod
    def from_state(cls, state: dict[str, Any], *, server_keys: PublicKeySet,
                   show: Callable[[str], None] = lambda line: None) -> SoftToken:
        return cls(token_id=state["token_id"], secret=bytes.fromhex(state["secret"]),
                   suite=state["suite"], counter=int(state["counter"]),
                   server_url=state["server_url"], login=state["login"],
                   server_keys=server_keys, show=show)
