"""The legal-act registry in the store: what every command's legal basis is looked up in,
the commands that change it, and its seeding at start-up.

Every other command handler asks `self.legal_acts` for the Rules in force on its
effective date. That registry is the acts stored as LegalAct aggregates, followed
incrementally (each look-up reads only events stored since the last one), over the
built-in seed for acts not stored yet — which is exactly what seeding stores, so a
process that starts before the seeding finished decides alike.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic

from domain.context import Actor, CommandContext
from domain.errors import CaseNotFound, InvalidTransition, InvalidValue
from domain.legal_act import LegalAct, legal_act_id, registry_facts
from domain.legal_act_commands import (
    EnterPublication,
    EnterStateRegistration,
    RegisterLegalAct,
    RepealLegalAct,
)
from domain.legal_acts import ActFacts, LegalActRegistry, registry_basis
from infra.service_base import Outcome, ServiceBase

SEED_ACTOR = Actor("kosh-seed", "service", "kosh")
_PAGE = 1000
# The event classes the library makes of the aggregate's decorated methods.
_TOPICS = [
    get_topic(getattr(LegalAct, name))
    for name in ("Registered", "PublicationEntered", "StateRegistrationEntered", "Repealed")
]


# How stale another process's view of the registry may be. Acts change a few times a
# year; asking the store before every command cost a third of the write path's CPU.
REFRESH_S = 0.5


class StoredLegalActs:
    """The registry as the store holds it, over a seed for acts not stored. Changes made
    through this process are seen at once; changes by other processes within REFRESH_S."""

    def __init__(self, app: ServiceBase, seed: LegalActRegistry) -> None:
        self.app = app
        self.seed = seed
        self._lock = threading.Lock()
        self._position = 0
        self._stored: dict[UUID, LegalAct] = {}
        self._registry = seed
        self._checked_at = -REFRESH_S

    def invalidate(self) -> None:
        self._checked_at = -REFRESH_S

    def current(self) -> LegalActRegistry:
        if time.monotonic() - self._checked_at < REFRESH_S:
            return self._registry
        with self._lock:
            self._checked_at = time.monotonic()
            head = self.app.recorder.max_notification_id() or 0
            if head > self._position:
                changed = self._changed_since(self._position, head)
                self._position = head
                if changed:
                    for aggregate_id in changed:
                        self._stored[aggregate_id] = self.app.repository.get(aggregate_id)
                    stored = registry_facts(list(self._stored.values()))
                    by_id: dict[str, ActFacts] = {a.act_id: a for a in self.seed.acts()}
                    by_id.update({a.act_id: a for a in stored})
                    self._registry = LegalActRegistry(by_id.values())
            return self._registry

    def _changed_since(self, position: int, head: int) -> set[UUID]:
        changed: set[Any] = set()  # the library types a notification's id as UUID | str
        start = position + 1
        while start <= head:
            page = self.app.recorder.select_notifications(
                start=start, limit=_PAGE, stop=head, topics=_TOPICS
            )
            changed.update(n.originator_id for n in page)
            if len(page) < _PAGE:
                break
            start = page[-1].id + 1
        return changed


class LegalActCommands(ServiceBase):
    @property
    def legal_acts(self) -> LegalActRegistry:
        return self._stored_legal_acts.current()

    @legal_acts.setter
    def legal_acts(self, seed: LegalActRegistry) -> None:
        # ServiceBase hands over the registry it was given: here, the seed.
        self._stored_legal_acts = StoredLegalActs(self, seed)

    def _save_acts(self, *aggregates: Any) -> Outcome:
        try:
            return self._save(*aggregates)
        finally:
            self._stored_legal_acts.invalidate()

    # -- reading ---------------------------------------------------------------------
    def legal_act(self, ref: str | UUID) -> LegalAct:
        aggregate_id = ref if isinstance(ref, UUID) else legal_act_id(ref)
        found = self._find_act(aggregate_id)
        if found is None:
            raise CaseNotFound(f"no legal act {ref} in the registry")
        return found

    def _find_act(self, aggregate_id: UUID) -> LegalAct | None:
        try:
            found: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, LegalAct) else None

    # -- commands --------------------------------------------------------------------
    def register_legal_act(self, cmd: RegisterLegalAct, ctx: CommandContext) -> Outcome:
        facts = cmd.facts()
        if self._find_act(legal_act_id(facts.act_id)) is not None:
            raise InvalidTransition(f"legal act {facts.act_id} is already in the registry")
        meta = ctx.meta(registry_basis("registration of a legal act"))
        act = LegalAct.register(facts, meta)
        repealed = []
        for target in facts.repeals:
            found = self._find_act(legal_act_id(target))
            if found is None:
                raise InvalidValue(
                    f"{facts.title} repeals {target}, which is not in the "
                    "registry; register it first"
                )
            found.repeal(act, meta)
            repealed.append(found)
        try:
            return self._save_acts(act, *repealed)
        except RecordConflictError:
            raise InvalidTransition(
                f"legal act {facts.act_id} was registered or changed by "
                "another request at the same time"
            ) from None

    def enter_legal_act_publication(
        self, ref: str | UUID, cmd: EnterPublication, ctx: CommandContext
    ) -> Outcome:
        act = self.legal_act(ref)
        act.enter_publication(
            cmd.published_on,
            cmd.correction_reason,
            ctx.meta(registry_basis("first official publication")),
        )
        return self._save_acts(act)

    def enter_legal_act_state_registration(
        self, ref: str | UUID, cmd: EnterStateRegistration, ctx: CommandContext
    ) -> Outcome:
        act = self.legal_act(ref)
        act.enter_state_registration(
            cmd.registration_number,
            cmd.registered_on,
            ctx.meta(registry_basis("state registration")),
        )
        return self._save_acts(act)

    def repeal_legal_act(
        self, ref: str | UUID, cmd: RepealLegalAct, ctx: CommandContext
    ) -> Outcome:
        act = self.legal_act(ref)
        by = self._find_act(legal_act_id(cmd.repealed_by))
        if by is None:
            raise InvalidValue(
                f"no legal act {cmd.repealed_by} in the registry; register the repealing act first"
            )
        act.repeal(by, ctx.meta(registry_basis("repeal")))
        return self._save_acts(act)

    # -- start-up --------------------------------------------------------------------
    def seed_legal_acts(self) -> int:
        """Stores the seed acts not stored yet; returns how many it stored. Safe to run
        from several processes at once and on every start."""
        for _ in range(10):
            try:
                return self._seed_missing()
            except RecordConflictError:
                continue  # another process seeded the same act meanwhile: look again
        return 0

    def _seed_missing(self) -> int:
        stored = 0
        for facts in self._stored_legal_acts.seed.acts():
            if self._find_act(legal_act_id(facts.act_id)) is not None:
                continue
            meta = _seed_context(facts).meta(registry_basis("registration of a legal act"))
            act = LegalAct.register(facts, meta)
            targets = [
                t
                for t in (self._find_act(legal_act_id(r)) for r in facts.repeals)
                if t is not None and t.repealed_by is None
            ]
            for target in targets:
                target.repeal(act, meta)
            self._save_acts(act, *targets)
            stored += 1
        return stored


def _seed_context(facts: ActFacts) -> CommandContext:
    key = f"seed/legal-act/{facts.act_id}"
    return CommandContext(
        actor=SEED_ACTOR,
        effective_date=facts.adopted_on,
        correlation_id="seed-legal-acts",
        causation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
    )
