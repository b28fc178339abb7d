"""What every router needs: the wired Kosh of this app, and the accepted-command reply."""

from __future__ import annotations

from fastapi import Request

from api.bootstrap import Kosh
from api.schemas import CommandAccepted
from infra.application import Outcome


def kosh_of(request: Request) -> Kosh:
    return request.app.state.kosh


def accepted(request: Request, outcome: Outcome) -> CommandAccepted:
    """Reply to an accepted command, after waking an in-process publisher."""
    kosh_of(request).committed()
    return CommandAccepted(
        case_id=outcome.case_id,
        sequence_numbers=list(outcome.sequence_numbers),
        correlation_id=request.state.correlation_id,
    )
