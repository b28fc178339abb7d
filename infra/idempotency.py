"""Each command id (a Kafka command id or an HTTP Idempotency-Key) executes at most once.

The outcome of a command is kept in the event store's own database, next to the events.
Executing and recording cannot share one transaction (the store commits its events
itself), so a command is first *claimed* together with the store head at that moment;
the events it saves carry the command id as their causation id. A claim found without an
outcome means the executor died in between: the events after the recorded head are
searched for that causation id, and if they are there the command is recorded as accepted
from them instead of being executed a second time.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from eventsourcing.persistence import ApplicationRecorder

from domain import errors as domain_errors
from domain.errors import DomainError, RuleViolation
from infra.sql import Database

log = structlog.get_logger(__name__)

_DDL = """CREATE TABLE IF NOT EXISTS kosh_command_outcomes (
    command_id TEXT PRIMARY KEY,
    command_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    head_before BIGINT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL,
    result TEXT,
    outcome TEXT,
    recorded_at DOUBLE PRECISION
)"""

MAX_KEY_LENGTH = 200
# Six parameters a claim: far below SQLite's and PostgreSQL's limits on one statement.
_CLAIMS_PER_STATEMENT = 100
# One per process: tells this process's own in-flight claims from a dead process's.
OWNER = uuid.uuid4().hex


class IdempotencyConflict(DomainError):
    """The id was used before for a different command."""

    code = "idempotency_key_reused"


class CommandInProgress(DomainError):
    """Another executor holds the id right now; the caller should retry later."""

    code = "command_in_progress"


@dataclass(frozen=True)
class Recorded:
    """A command's outcome as first recorded; `replayed` when this call executed nothing."""

    command_id: str
    result: str  # accepted | refused
    outcome: dict[str, Any]
    replayed: bool


def fingerprint(*parts: Any) -> str:
    """Same command, same fingerprint: canonical JSON (sorted keys) hashed."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def refusal_of(exc: DomainError) -> dict[str, Any]:
    refusal: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, RuleViolation):
        refusal["clause"] = exc.clause
    return refusal


def _error_classes() -> dict[str, type[DomainError]]:
    found: dict[str, type[DomainError]] = {}
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def refusal_error(refusal: dict[str, Any]) -> DomainError:
    """Rebuilds the refusal as the exception it was, so it maps to the same HTTP reply."""
    cls = _error_classes().get(str(refusal.get("code")), domain_errors.DomainError)
    exc = cls.__new__(cls)
    DomainError.__init__(exc, str(refusal.get("message", "")))
    if "clause" in refusal:
        exc.clause = refusal["clause"]  # type: ignore[attr-defined]
    return exc


@dataclass(frozen=True)
class Caused:
    """A stored event a command caused."""

    case_id: str
    seq: int
    correlation_id: str


def events_caused_by(
    recorder: ApplicationRecorder, causation_id: str, after: int, page: int = 500
) -> list[Caused]:
    """The stored events after `after` that the command caused, in store order: those
    citing its id, and the consequences of its decisions, which cite the decision (an
    accepted proposal's changes cite its `acceptance_id`) and come after it."""
    found: list[Caused] = []
    causes = {causation_id}
    start = after + 1
    while True:
        batch = recorder.select_notifications(start=start, limit=page)
        for n in batch:
            state = orjson.loads(n.state)
            meta = state.get("meta") or {}
            if meta.get("causation_id") in causes:
                found.append(Caused(str(n.originator_id), n.id,
                                    str(meta.get("correlation_id", ""))))
                if state.get("acceptance_id"):
                    causes.add(str(state["acceptance_id"]))
        if len(batch) < page:
            return found
        start = batch[-1].id + 1


class IdempotencyStore:
    def __init__(self, db: Database, recorder: ApplicationRecorder,
                 claim_timeout_s: float = 30.0) -> None:
        self.db = db
        self.recorder = recorder
        self.claim_timeout_s = claim_timeout_s
        self._in_flight: set[str] = set()
        with db.transaction() as cur:
            cur.execute(_DDL)

    def run(
        self,
        command_id: str,
        command_type: str,
        print_: str,
        execute: Callable[[], dict[str, Any]],
        recovered: Callable[[list[Caused]], dict[str, Any]],
        after_execute: Callable[[], None] | None = None,
    ) -> Recorded:
        """Executes once per command id and records the outcome; later calls replay it.

        `execute` returns the accepted outcome or raises DomainError (recorded as refused);
        `recovered` builds the accepted outcome from events found after a crash."""
        earlier = self.begin(command_id, command_type, print_, recovered)
        if earlier is not None:
            return earlier
        result, outcome = self.execute_held(command_id, execute, after_execute)
        return self.finish(command_id, result, outcome)

    def execute_held(
        self, command_id: str, execute: Callable[[], dict[str, Any]],
        after_execute: Callable[[], None] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """(result, outcome) of a command whose id this caller holds, not yet recorded; an
        unexpected failure frees the id (`abandon`) and is raised."""
        try:
            outcome, result = execute(), "accepted"
        except DomainError as exc:
            outcome, result = {"refusal": refusal_of(exc)}, "refused"
        except BaseException:
            self.abandon(command_id)
            raise
        if after_execute is not None:
            after_execute()
        return result, outcome

    def begin(
        self, command_id: str, command_type: str, print_: str,
        recovered: Callable[[list[Caused]], dict[str, Any]],
    ) -> Recorded | None:
        """The recorded outcome of an id seen before, or None once this caller holds the
        claim and must execute, then call finish() or abandon()."""
        while True:
            row = self._row(command_id)
            if row is None:
                if self._claim(command_id, command_type, print_):
                    break
                continue
            if row["fingerprint"] != print_:
                raise IdempotencyConflict(
                    f"command id {command_id!r} was already used for a different command; "
                    "send a new id for a new command"
                )
            if row["result"] is not None:
                return Recorded(command_id, row["result"], orjson.loads(row["outcome"]), True)
            if self._held_by_live_executor(command_id, row):
                raise CommandInProgress(
                    f"command {command_id!r} is being executed right now; retry shortly"
                )
            found = events_caused_by(self.recorder, command_id, int(row["head_before"]))
            if found:
                log.warning("idempotency.recovered", command_id=command_id, events=len(found))
                return self._record(command_id, "accepted", recovered(found))
            if self._take_over(command_id, row):
                break
        self._in_flight.add(command_id)
        return None

    def finish(self, command_id: str, result: str, outcome: dict[str, Any]) -> Recorded:
        try:
            return self._record(command_id, result, outcome)
        finally:
            self._in_flight.discard(command_id)

    def abandon(self, command_id: str) -> None:
        """After an unexpected failure: free the id unless its events were stored (then a
        retry finds and records them)."""
        self._in_flight.discard(command_id)
        try:
            row = self._row(command_id)
            if row is None or row["result"] is not None:
                return
            if not events_caused_by(self.recorder, command_id, int(row["head_before"])):
                with self.db.transaction() as cur:
                    cur.execute(
                        "DELETE FROM kosh_command_outcomes WHERE command_id = ? "
                        "AND result IS NULL AND owner = ?", (command_id, OWNER),
                    )
        except Exception as exc:  # noqa: BLE001 - the claim then expires by timeout
            log.warning("idempotency.release_failed", command_id=command_id,
                        error=type(exc).__name__)

    # -- a batch of commands (the Kafka intake): one claim and one record transaction -------
    def claim_new(self, commands: Sequence[tuple[str, str, str]]) -> set[str]:
        """Claims, in one transaction, each (id, type, fingerprint) whose id was never
        claimed; returns the ids now held, which must be executed and then recorded with
        `record_all` (or `abandon`ed). The others (seen before) go through `run` one by
        one: replayed, refused as a conflict, or recovered."""
        if not commands:
            return set()
        head = self.recorder.max_notification_id() or 0
        now, held = time.time(), set[str]()
        with self.db.transaction() as cur:
            for at in range(0, len(commands), _CLAIMS_PER_STATEMENT):
                chunk = commands[at : at + _CLAIMS_PER_STATEMENT]
                cur.execute(
                    "INSERT INTO kosh_command_outcomes (command_id, command_type, fingerprint, "
                    "head_before, owner, claimed_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                    + " ON CONFLICT (command_id) DO NOTHING RETURNING command_id",
                    [v for cid, ctype, print_ in chunk for v in (cid, ctype, print_, head, OWNER,
                                                                 now)],
                )
                held.update(str(row[0]) for row in cur.fetchall())
        self._in_flight.update(held)
        return held

    def record_all(self, outcomes: Sequence[tuple[str, str, dict[str, Any]]]) -> list[Recorded]:
        """The outcomes of held ids, (id, result, outcome) each, in one transaction."""
        if not outcomes:
            return []
        try:
            now, first = time.time(), []
            with self.db.transaction() as cur:
                for cid, result, outcome in outcomes:
                    first.append(cur.execute(
                        "UPDATE kosh_command_outcomes SET result = ?, outcome = ?, "
                        "recorded_at = ? WHERE command_id = ? AND result IS NULL",
                        (result, orjson.dumps(outcome).decode(), now, cid),
                    ) == 1)
        finally:
            self._in_flight.difference_update(cid for cid, _, _ in outcomes)
        out = []
        for (cid, result, outcome), mine in zip(outcomes, first, strict=True):
            if mine:
                out.append(Recorded(cid, result, outcome, False))
                continue
            # Whoever recorded first wins; every caller reports that first outcome.
            row = self._row(cid)
            assert row is not None and row["result"] is not None
            out.append(Recorded(cid, row["result"], orjson.loads(row["outcome"]), True))
        return out

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        rows = self.db.query(
            "SELECT command_type, result, COUNT(*) FROM kosh_command_outcomes "
            "WHERE result IS NOT NULL GROUP BY command_type, result"
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def recorded_since(self, since: float) -> int:
        rows = self.db.query(
            "SELECT COUNT(*) FROM kosh_command_outcomes WHERE recorded_at >= ?", (since,)
        )
        return int(rows[0][0])

    def _row(self, command_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            "SELECT fingerprint, head_before, owner, claimed_at, result, outcome "
            "FROM kosh_command_outcomes WHERE command_id = ?", (command_id,),
        )
        if not rows:
            return None
        keys = ("fingerprint", "head_before", "owner", "claimed_at", "result", "outcome")
        return dict(zip(keys, rows[0], strict=True))

    def _claim(self, command_id: str, command_type: str, print_: str) -> bool:
        return command_id in self.claim_new([(command_id, command_type, print_)])

    def _held_by_live_executor(self, command_id: str, row: dict[str, Any]) -> bool:
        if row["owner"] == OWNER:
            return command_id in self._in_flight
        return time.time() - float(row["claimed_at"]) < self.claim_timeout_s

    def _take_over(self, command_id: str, row: dict[str, Any]) -> bool:
        """Re-claims an abandoned claim; the old head is kept so no event is missed."""
        with self.db.transaction() as cur:
            return cur.execute(
                "UPDATE kosh_command_outcomes SET owner = ?, claimed_at = ? "
                "WHERE command_id = ? AND owner = ? AND claimed_at = ? AND result IS NULL",
                (OWNER, time.time(), command_id, row["owner"], row["claimed_at"]),
            ) == 1

    def _record(self, command_id: str, result: str, outcome: dict[str, Any]) -> Recorded:
        return self.record_all([(command_id, result, outcome)])[0]
