"""What the fuzz gate saw go wrong, deduplicated, and the summary it fails with.

Schemathesis stops an operation's run at its first failing example when the failure is
raised into Hypothesis, so one undocumented status code would hide a crash behind it. The
gate records every failure here instead and lets the run go on; the test fails at the end
with one entry per distinct failure, each with a request that reproduces it and the answer
it got. A 5xx is keyed by the exception the server logged for it (read in-process from the
``qrgate.http`` logger), so two crashes of one operation with different causes stay apart.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from schemathesis import Case, Response
from schemathesis.core.failures import Failure

EXCERPT = 600


@dataclass(frozen=True)
class Finding:
    operation: str
    kind: str
    key: str
    # How the request was sent (which credential), and the request itself as a command.
    attempt: str
    request: str
    response: str
    detail: str
    crash: Crash | None = None

    def render(self, number: int, seen: int) -> str:
        headline = f"{self.kind}: {self.key}" if self.key else self.kind
        lines = [f"  {number}. {headline} (seen {seen}x)"]
        lines += [f"     {line}" for line in self.detail.strip().splitlines() if line.strip()]
        if self.crash:
            lines.append(f"     server logged: {self.crash.summary}")
            lines.append(f"     via: {self.crash.trace}")
        lines.append(f"     sent with: {self.attempt}")
        lines.append(f"     request:  {self.request}")
        lines.append(f"     response: {self.response}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Crash:
    """What the server logged for one of its 500s."""

    summary: str  # ``Type: message at file:line (function)``, at the innermost qrgate frame
    trace: str  # the qrgate frames, outermost first


class ServerLog(logging.Filter):
    """Collects the exceptions the server logs for its 500s, so each crash is reported with
    its cause, and keeps them out of the test output while attached: the ledger reports
    each distinct crash once, where the log would repeat it (twice) for every request.

    A filter on the loggers rather than a handler, because a logger's filters run before
    any handler sees the record, pytest's capturing handlers included."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def take(self) -> Crash | None:
        """The last crash logged since the previous call, or None."""
        records, self.records = self.records, []
        for record in reversed(records):
            if record.exc_info and record.exc_info[1] is not None:
                return _describe(record.exc_info[1])
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        if record.name == "qrgate.http":
            self.records.append(record)
            self._seen.add(id(error))
            return False
        # Starlette re-raises an error after its handler has answered 500, so uvicorn logs
        # the very exception qrgate logged; drop that copy, keep anything else uvicorn says.
        return id(error) not in self._seen

    @contextmanager
    def attached(self) -> Iterator[ServerLog]:
        loggers = [logging.getLogger("qrgate.http"), logging.getLogger("uvicorn.error")]
        for logger in loggers:
            logger.addFilter(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeFilter(self)


def _describe(error: BaseException) -> Crash:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "/qrgate/" in frame.filename.replace("\\", "/")]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    text = str(error).strip()
    message = text.splitlines()[0][:200] if text else ""
    location = f" at {Path(where.filename).name}:{where.lineno} ({where.name})" if where else ""
    trace = " > ".join(f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
                       for frame in ours)
    return Crash(summary=f"{type(error).__name__}: {message}{location}", trace=trace)


def describe_response(response: Response) -> str:
    content_type = response.headers.get("content-type", ["-"])[0]
    body = response.content.decode("utf-8", "replace") if response.content else ""
    if len(body) > EXCERPT:
        body = body[:EXCERPT] + "..."
    return f"{response.status_code} {content_type} {body}".rstrip()


def describe_request(case: Case, response: Response) -> str:
    command = case.as_curl_command(headers=dict(response.request.headers))
    return command if len(command) <= 2000 else command[:2000] + "... (truncated)"


@dataclass
class Ledger:
    database: str
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    seen: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    requests: int = 0
    # (operation, status, problem code): how far requests got, e.g. 404 user_not_found.
    outcomes: Counter[tuple[str, int, str]] = field(default_factory=Counter)

    def count(self, operation: str, response: Response) -> None:
        self.requests += 1
        self.outcomes[(operation, response.status_code, _problem_code(response))] += 1

    def add(self, finding: Finding) -> None:
        identity = (finding.operation, finding.kind, finding.key)
        self.seen[identity] += 1
        kept = self.findings.get(identity)
        # The shortest request that shows a failure is the easiest one to reproduce it with.
        if kept is None or len(finding.request) < len(kept.request):
            self.findings[identity] = finding

    def add_failure(self, failure: Failure, *, case: Case, response: Response, attempt: str,
                    crash: Crash | None) -> None:
        checks = ", ".join(type(failure).checks) or "custom"
        kind = f"{type(failure).code} {failure.title} [{checks}]"
        key = failure._unique_key
        if crash is not None and response.status_code >= 500:
            # Crashes are told apart by what crashed, not by their (identical) status code.
            key = f"{response.status_code} {crash.summary}"
        self.add(Finding(
            operation=case.operation.label, kind=kind, key=key, attempt=attempt,
            request=describe_request(case, response), response=describe_response(response),
            detail=failure.message, crash=crash,
        ))

    def summary(self) -> str:
        if not self.findings:
            return f"no failures ({self.requests} requests on {self.database})"
        by_operation: dict[str, list[tuple[Finding, int]]] = {}
        for identity, finding in self.findings.items():
            by_operation.setdefault(finding.operation, []).append((finding, self.seen[identity]))
        lines = [f"schemathesis gate on {self.database}: {len(self.findings)} distinct failures "
                 f"in {len(by_operation)} operations ({self.requests} requests)", "",
                 *self.overview(), "", "in detail, by operation:", ""]
        for operation in sorted(by_operation):
            lines.append(operation)
            for number, (finding, seen) in enumerate(by_operation[operation], start=1):
                lines.append(finding.render(number, seen))
            lines.append("")
        lines.append(self.outcome_table())
        return "\n".join(lines)

    def overview(self) -> list[str]:
        """One line per kind of failure, with the operations it was seen in: most causes
        (an undocumented status, say) show up in many operations at once."""
        operations: dict[str, set[str]] = {}
        for (operation, kind, key) in self.findings:
            headline = f"{kind}: {key}" if key else kind
            operations.setdefault(headline, set()).add(operation)
        lines = ["overview:"]
        for headline, names in sorted(operations.items(), key=lambda item: -len(item[1])):
            shown = ", ".join(sorted(names)) if len(names) <= 3 else f"{len(names)} operations"
            lines.append(f"  - {headline} ({shown})")
        return lines

    def outcome_table(self) -> str:
        """Per operation, what the server answered and how often: shows how far the
        fuzzer got (a table of 401s and 404s would mean it never reached a handler)."""
        per_operation: dict[str, list[str]] = {}
        for (operation, status, code), seen in sorted(self.outcomes.items()):
            label = f"{status} {code}".strip()
            per_operation.setdefault(operation, []).append(f"{label} x{seen}")
        lines = ["answers per operation:"]
        lines += [f"  {operation}: {', '.join(outcomes)}"
                  for operation, outcomes in per_operation.items()]
        return "\n".join(lines)


def _problem_code(response: Response) -> str:
    if response.status_code < 400:
        return ""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "(not JSON)"
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else "(no code)"
