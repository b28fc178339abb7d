"""The HTTP API (OpenAPI at /docs): the routers of api/routes/ over one wired Kosh."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from api import errors
from api.bootstrap import Kosh
from api.context import CorrelationMiddleware
from api.middleware import IdempotencyMiddleware, RequestMetricsMiddleware
from api.routes import (
    audit,
    auditor,
    cases,
    data_protection,
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
from api.security import BodySizeLimit, Denied, denied_response, guard

ROUTERS = (operations.router, registration.router, cases.router, registers.router,
           audit.router,
           quotas.router, relocation.router, proposals.router, territories.router,
           auditor.router, monitoring.router, data_protection.router, legal_acts.router)


NO_TELEMETRY: TelemetryConfig = {
    "tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(kosh: Kosh) -> FastAPI:
    app = FastAPI(
        title="Kosh",
        version="0.1.0",
        description="Case management for the Rules for regulating migration processes in "
        "Almaty: commands become immutable events; registers are projections. Every "
        "route but /healthz, /readyz and the contracts needs `Authorization: Bearer <token>` "
        "(`kosh token issue`) or `X-API-Key`.",
        # Authentication and the role check run before any route reads its body.
        dependencies=[Depends(guard)],
        # Kosh exports Prometheus metrics and structured logs, not OpenTelemetry; left on,
        # FastAPI looks up the global OTel providers (and the environment) on every
        # request, which was a tenth of the API's CPU under load.
        telemetry=NO_TELEMETRY,
    )
    app.state.kosh = kosh
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(BodySizeLimit, max_bytes=kosh.settings.max_body_bytes)
    errors.install(app)

    @app.exception_handler(Denied)
    async def on_denied(request: Request, exc: Denied) -> JSONResponse:
        return denied_response(exc)

    for router in ROUTERS:
        app.include_router(router)
    return app
