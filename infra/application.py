"""Kosh's application service: each command validates against the Rules in force on its
effective date and saves the resulting events atomically. One mixin per case type."""

from __future__ import annotations

from infra.commands.erasure import ErasureCommands
from infra.commands.legal_acts import LegalActCommands
from infra.commands.monitoring import MonitoringCommands
from infra.commands.proposal import ProposalCommands
from infra.commands.quota import QuotaCommands
from infra.commands.registration import RegistrationCommands
from infra.commands.relocation import RelocationCommands
from infra.service_base import Outcome

__all__ = ["KoshApplication", "Outcome"]


class KoshApplication(RegistrationCommands, RelocationCommands, ProposalCommands, QuotaCommands,
                      MonitoringCommands, ErasureCommands, LegalActCommands):
    """All command handlers over one event store."""
