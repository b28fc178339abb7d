"""A batch of intake commands executed at most once each, with one claim and one record
transaction for the whole batch.

Claimed, executed and recorded one by one, each command took the store's writer lock
twice more besides its events' commit, and with the batch's commands running side by
side those small transactions were what they queued on. Here every id not seen before is
claimed in one transaction, the claimed commands execute in lanes (intake_lanes), and
their outcomes are recorded in one transaction, before any is published. What is not so
simple goes the one-by-one way (IdempotencyStore.run): an id seen before (a replay, a
conflict, a crashed attempt to recover), and a repeat of an id within the batch, which
runs after the batch is recorded and so replays what its first copy did.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from consumers.contracts import CommandEnvelope, CommandResult
from consumers.dead_letters import is_transient
from domain.context import Actor
from infra.idempotency import Caused

if TYPE_CHECKING:
    from consumers.intake import CommandIntake


@dataclass(frozen=True)
class Command:
    """A record that is a command its sender may send, ready to execute."""

    record: Any
    envelope: CommandEnvelope
    spec: Any
    cmd: BaseModel
    actor: Actor

    def labels(self) -> list[Hashable]:
        """What orders it after the batch's earlier commands: its case, its record key."""
        out: list[Hashable] = []
        if self.envelope.case_id is not None:
            out.append(("case", str(self.envelope.case_id)))
        if self.record is not None and self.record.key:
            out.append(("key", bytes(self.record.key)))
        return out


@dataclass(frozen=True)
class Prepared:
    """A command as the idempotency store runs it."""

    cid: str
    ctype: str
    print_: str
    run: Callable[[], dict[str, Any]]
    recovered: Callable[[list[Caused]], dict[str, Any]]


Outcome = CommandResult | BaseException | None


def execute_batch(intake: CommandIntake, commands: Sequence[Command]) -> list[Outcome]:
    """Each command's result, or what it raised; None for a command left unrun behind a
    transient failure in its lane (the caller then fails the batch)."""
    prepared = [intake.prepare(c) for c in commands]
    first: dict[str, int] = {}
    todo = [i for i, p in enumerate(prepared) if first.setdefault(p.cid, i) == i]
    repeats = [i for i, p in enumerate(prepared) if first[p.cid] != i]
    held = intake.outcomes.claim_new([(prepared[i].cid, prepared[i].ctype, prepared[i].print_)
                                      for i in todo])

    def do(i: int) -> Any:
        p = prepared[i]
        return intake.run_held(p) if p.cid in held else intake.execute_prepared(p)

    done = intake.lanes.run(todo, [commands[i].labels() for i in todo], do, stop=is_transient)
    out: list[Outcome] = [None] * len(commands)
    executed: list[tuple[int, tuple[str, dict[str, Any]]]] = []
    for i, got in zip(todo, done, strict=True):
        if isinstance(got, tuple):
            executed.append((i, got))
        elif got is None and prepared[i].cid in held:
            intake.outcomes.abandon(prepared[i].cid)  # claimed, never run: free the id
        else:
            out[i] = got
    # Recorded even when a lane failed: a claim left held by this live process would
    # hold up the redelivery of its command until the claim timed out.
    recorded = intake.outcomes.record_all(
        [(prepared[i].cid, result, outcome) for i, (result, outcome) in executed])
    for (i, _), rec in zip(executed, recorded, strict=True):
        out[i] = intake.result_of(prepared[i], rec)
    if any(isinstance(o, Exception) and is_transient(o) for o in out):
        return out
    for i in repeats:
        try:
            out[i] = intake.execute_prepared(prepared[i])
        except Exception as exc:  # noqa: BLE001 - handed back with its command
            out[i] = exc
            if is_transient(exc):
                break
    return out
