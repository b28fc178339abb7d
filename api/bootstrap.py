"""The composition root: settings in, a wired Kosh out. Entry points and tests call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from infra.application import KoshApplication
from infra.auth import ApiKeyStore
from infra.eventstore import build_mapper
from infra.settings import Settings
from infra.sql import Database
from projections.legal_acts import LegalActsProjection
from projections.monitoring import MonitoringProjection
from projections.projector import Projection, Projector
from projections.proposals import ProposalsProjection
from projections.quotas import QuotasProjection
from projections.relocations import RelocationsProjection
from projections.residents import ResidentsProjection, ResidentsRegister
from projections.territories import TerritoriesProjection


def store_database(settings: Settings) -> Database:
    """The event store's own database (publisher position lives there)."""
    return Database(settings.database_url, settings.data_dir / "events.sqlite",
                    settings.database_schema)


def registers_database(settings: Settings) -> Database:
    """The projections' database: a separate SQLite file, or the same PostgreSQL."""
    return Database(settings.database_url, settings.data_dir / "registers.sqlite",
                    settings.database_schema)


def all_projections() -> list[Projection]:
    """Every register; a new projection is added here and nowhere else."""
    return [ResidentsProjection(), QuotasProjection(), RelocationsProjection(),
            TerritoriesProjection(), ProposalsProjection(), MonitoringProjection(),
            LegalActsProjection()]


def build_projector(settings: Settings, db: Database | None = None) -> Projector:
    return Projector(db or registers_database(settings), all_projections())


@dataclass
class Kosh:
    settings: Settings
    app: KoshApplication
    registers_db: Database
    projector: Projector
    residents: ResidentsRegister
    api_keys: ApiKeyStore
    # Called after each successful command (wakes an in-process publisher).
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def committed(self) -> None:
        for callback in self.after_commit:
            callback()


def bootstrap(settings: Settings | None = None) -> Kosh:
    settings = settings or Settings()
    registers_db = registers_database(settings)
    return Kosh(
        settings=settings,
        app=KoshApplication(settings),
        registers_db=registers_db,
        projector=build_projector(settings, registers_db),  # creates the register tables
        residents=ResidentsRegister(registers_db),
        api_keys=ApiKeyStore(store_database(settings)),
    )


__all__ = ["Kosh", "bootstrap", "build_mapper", "build_projector", "store_database"]
