"""The HTTP API (OpenAPI at /docs): the routers of api/routes/ over one wired Kosh."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.bootstrap import Kosh
from api.context import CorrelationMiddleware
from api.middleware import IdempotencyMiddleware, RequestMetricsMiddleware
from api.routes import (
    audit,
    auditor,
    cases,
    legal_acts,
    monitoring,
    operations,
    proposals,
    quotas,
    registers,
    registration,
    relocation,
    territories,
)

ROUTERS = (operations.router, registration.router, cases.router, registers.router,
           audit.router,
           quotas.router, relocation.router, proposals.router, territories.router,
           auditor.router, monitoring.router, legal_acts.router)


def create_app(kosh: Kosh) -> FastAPI:
    app = FastAPI(
        title="Kosh",
        version="0.1.0",
        description="Case management for the Rules for regulating migration processes in "
        "Almaty: commands become immutable events; registers are projections.",
    )
    app.state.kosh = kosh
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
