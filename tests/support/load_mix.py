"""A mix of the Rules' commands, as several users at once would send them: registrations,
relocations that reserve places in small quotas (so they fill up and refusals happen),
§5 proposals that raise and lower those quotas, quota establishment; some decisions
raced by three senders at once (two API instances and the Kafka intake)."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infra.settings import Settings
from tests.support.builders import DISTRICTS, iin_for, registration_body
from tests.support.load import HttpChannel, KafkaChannel, Ledger, Sent

# Fixed dates: the run must not depend on today's date (quota periods end, §5 wants the
# coming year).
ESTABLISHED_ON = "2025-11-01"
DESIGNATED_ON = "2025-12-01"
PROPOSED_ON = "2025-12-20"
DECIDED_ON = "2026-03-01"
PERIOD = "2026"
CATEGORIES = ("kandas", "settler")
OTHER_TERRITORIES = (
    "Alatau",
    "Almaly",
    "Auezov",
    "Bostandyk",
    "Zhetysu",
    "Medeu",
    "Nauryzbay",
    "Turksib",
)


class SetupFailed(AssertionError):
    pass


class LoadMix:
    def __init__(
        self,
        settings: Settings,
        api_urls: Sequence[str],
        seed: int,
        kafka_share: float = 0.4,
        race_share: float = 0.2,
        quota_limit: int = 25,
        first_person: int = 0,
    ) -> None:
        self.ledger = Ledger()
        self.http = HttpChannel(settings, api_urls)
        self.kafka = KafkaChannel(settings)
        self.api_count = len(api_urls)
        self.seed = seed
        self.kafka_share = kafka_share
        self.race_share = race_share
        self.quota_limit = quota_limit
        self._people = itertools.count(first_person)
        self._people_lock = threading.Lock()
        self._races = itertools.count(1)
        self.crashes: list[str] = []  # the load generator's own failures: the run is void

    def close(self) -> None:
        self.kafka.close()

    # -- sending -----------------------------------------------------------------------

    def send(
        self,
        rng: random.Random,
        command_type: str,
        body: dict[str, Any],
        target: str | None = None,
        channel: str | None = None,
        via: int | None = None,
        race: str | None = None,
    ) -> Sent:
        channel = channel or ("kafka" if rng.random() < self.kafka_share else "http")
        sent = self.ledger.new(channel, command_type, target, race)
        if channel == "kafka":
            return self.kafka.send(sent, {"payload": body})
        return self.http.send(sent, body, via)

    def race(self, command_type: str, target: str, body: dict[str, Any]) -> list[Sent]:
        """The same decision sent at once, twice through every API instance and twice
        through the intake (whose consumers share a group), each as its own command: at
        most one may win."""
        group = f"race-{next(self._races)}"
        senders = [("http", i) for i in range(self.api_count) for _ in range(2)]
        senders += [("kafka", None)] * 2
        with ThreadPoolExecutor(len(senders)) as pool:
            return list(
                pool.map(
                    lambda s: self.send(
                        random.Random(), command_type, body, target, s[0], s[1], group
                    ),
                    senders,
                )
            )

    def decide(
        self, rng: random.Random, command_type: str, target: str, body: dict[str, Any]
    ) -> Sent | None:
        """One decision, raced now and then; the winner (if any) is returned."""
        if rng.random() < self.race_share:
            return next(
                (s for s in self.race(command_type, target, body) if s.result == "accepted"), None
            )
        sent = self.send(rng, command_type, body, target)
        return sent if sent.result == "accepted" else None

    def person(self) -> int:
        with self._people_lock:
            return next(self._people)

    # -- the Rules' setup before the load ----------------------------------------------

    def setup(self) -> None:
        """The Almaty quotas of the period and the territory open for both categories."""
        rng = random.Random(self.seed)
        for kind in CATEGORIES:
            sent = self.send(
                rng,
                "establish_quota",
                {
                    "kind": kind,
                    "territory": "Almaty",
                    "period": PERIOD,
                    "limit": self.quota_limit,
                    "effective_date": ESTABLISHED_ON,
                },
                channel="http",
            )
            if sent.result != "accepted":
                raise SetupFailed(f"quota not established: {sent}")
        drafted = self.send(
            rng,
            "draft_proposal",
            {
                "kind": "include_territory",
                "categories": list(CATEGORIES),
                "rationale": "fault suite",
                "effective_date": DESIGNATED_ON,
            },
            channel="http",
        )
        for step in ("submit_proposal", "accept_proposal"):
            if drafted.result != "accepted":
                raise SetupFailed(f"designation failed: {drafted}")
            drafted = self.send(
                rng, step, {"effective_date": DESIGNATED_ON}, drafted.case_id, channel="http"
            )

    # -- the load ----------------------------------------------------------------------

    def run(self, worker: int, stop: threading.Event) -> None:
        rng = random.Random(f"{self.seed}-{worker}")
        flows = [
            (self.registration, 35),
            (self.relocation, 40),
            (self.proposal, 15),
            (self.establishment, 10),
        ]
        while not stop.is_set():
            flow = rng.choices([f for f, _ in flows], [w for _, w in flows])[0]
            try:
                flow(rng, stop)
            except Exception as exc:  # noqa: BLE001 - reported by the checker, load goes on
                self.crashes.append(f"load worker {worker}: {exc!r}")

    def registration(self, rng: random.Random, stop: threading.Event) -> None:
        submitted = self.send(rng, "submit_registration", registration_body(self.person()))
        if submitted.result != "accepted" or stop.is_set():
            return
        case = str(submitted.case_id)
        if rng.random() < 0.8:
            self.decide(rng, "approve_registration", case, {})
        else:
            self.send(rng, "refuse_registration", {"reason": "no lease presented"}, case)

    def relocation(self, rng: random.Random, stop: threading.Event) -> None:
        people = [self.person() for _ in range(rng.choice((1, 1, 2, 3)))]

        def person(n: int) -> dict[str, Any]:
            return {"iin": iin_for(n), "family_name": f"Family{n}", "given_name": f"Given{n}"}

        applied = self.send(
            rng,
            "apply_for_relocation",
            {
                "category": rng.choice(CATEGORIES),
                "territory": "Almaty",
                "period": PERIOD,
                "applicant": person(people[0]),
                "family_members": [person(n) for n in people[1:]],
                "effective_date": DECIDED_ON,
            },
        )
        if applied.result != "accepted" or stop.is_set():
            return
        case = str(applied.case_id)
        approved = self.decide(rng, "approve_relocation", case, {"effective_date": DECIDED_ON})
        if approved is None or stop.is_set():
            return
        roll = rng.random()
        if roll < 0.25:
            self.send(
                rng,
                "withdraw_relocation",
                {"reason": "changed plans", "effective_date": DECIDED_ON},
                case,
            )
        elif roll < 0.35:
            self.send(
                rng,
                "refuse_relocation",
                {"reason": "documents withdrawn", "effective_date": DECIDED_ON},
                case,
            )
        elif roll < 0.75:
            self.send(
                rng,
                "record_arrival",
                {
                    "address": {
                        "district": rng.choice(DISTRICTS),
                        "line": f"Arrival st {case[:8]}",
                    },
                    "housing": {
                        "type": "private",
                        "useful_area_m2": 120.0,
                        "occupants_after_registration": len(people) + 1,
                    },
                    "effective_date": DECIDED_ON,
                },
                case,
            )

    def proposal(self, rng: random.Random, stop: threading.Event) -> None:
        raise_it = rng.random() < 0.5
        drafted = self.send(
            rng,
            "draft_proposal",
            {
                "kind": "raise_quota" if raise_it else "lower_quota",
                "territory": "Almaty",
                "quota_kind": rng.choice(CATEGORIES),
                "period": PERIOD,
                "change_by": rng.randint(1, 6),
                "rationale": "labour market",
                "effective_date": PROPOSED_ON,
            },
        )
        if drafted.result != "accepted" or stop.is_set():
            return
        case = str(drafted.case_id)
        submitted = self.send(rng, "submit_proposal", {"effective_date": PROPOSED_ON}, case)
        if submitted.result != "accepted" or stop.is_set():
            return
        if rng.random() < 0.75:
            self.decide(rng, "accept_proposal", case, {"effective_date": PROPOSED_ON})
        else:
            self.send(
                rng, "decline_proposal", {"reasons": "not now", "effective_date": PROPOSED_ON}, case
            )

    def establishment(self, rng: random.Random, stop: threading.Event) -> None:
        # A small space of quotas: later attempts at the same one are refused (409).
        self.send(
            rng,
            "establish_quota",
            {
                "kind": rng.choice(("kandas", "settler", "foreign_labour")),
                "territory": rng.choice(OTHER_TERRITORIES),
                "period": rng.choice(("2027", "2028")),
                "limit": rng.randint(0, 40),
                "effective_date": ESTABLISHED_ON,
            },
        )
