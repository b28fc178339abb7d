"""The one place where refusals become HTTP statuses and bodies."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from eventsourcing import persistence as es_persistence
from eventsourcing.persistence import RecordConflictError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    CaseNotFound,
    DomainError,
    InvalidTransition,
    InvalidValue,
    RuleViolation,
)

log = structlog.get_logger(__name__)

STATUS = {CaseNotFound: 404, InvalidTransition: 409, RuleViolation: 422, InvalidValue: 422}

# The database is restarting, unreachable or out of connections: nothing was decided.
STORE_ERRORS: tuple[type[Exception], ...] = (
    es_persistence.OperationalError, es_persistence.InterfaceError, psycopg.OperationalError)
STORE_UNAVAILABLE = {"error": {"code": "store_unavailable",
                               "message": "the event store is unavailable; retry shortly"}}
STORE_RETRY_AFTER_S = 2


def log_store_unavailable(exc: Exception, path: str) -> None:
    # The driver's message says which it was (a pool wait, a refused connection, a
    # server gone), which the error's type alone does not.
    log.warning("store.unavailable", error=type(exc).__name__, detail=str(exc)[:300],
                path=path)


def status_for(exc: DomainError) -> int:
    for kind, status in STATUS.items():
        if isinstance(exc, kind):
            return status
    return 422


def refusal_body(exc: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, RuleViolation):
        body["clause"] = exc.clause
    return {"error": body}


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field-level messages without echoing the input (it may hold personal data)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Same shape as every other refusal; a 422 keeps `detail` a list of field errors,
        # as the OpenAPI schema of validation errors promises.
        message = str(exc.detail)
        detail: Any = message
        if exc.status_code == 422:
            detail = [{"loc": [], "msg": message, "type": "value_error"}]
        return JSONResponse(
            {"error": {"code": f"http_{exc.status_code}", "message": message}, "detail": detail},
            status_code=exc.status_code, headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
        log.info("command.refused", code=exc.code, message=exc.message, path=request.url.path)
        return JSONResponse(refusal_body(exc), status_code=status_for(exc))

    @app.exception_handler(RecordConflictError)
    async def on_concurrent_change(request: Request, exc: RecordConflictError) -> JSONResponse:
        # Two instances decided on the same case at once; the store kept exactly one.
        log.info("command.conflict", path=request.url.path)
        return JSONResponse(
            {"error": {"code": "concurrent_change", "message": "the case was changed by "
                       "another request at the same time; read it again and retry"}},
            status_code=409,
        )

    async def on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Nothing was decided, so the client may retry (with the same Idempotency-Key)
        # once it is back.
        log_store_unavailable(exc, request.url.path)
        return JSONResponse(STORE_UNAVAILABLE, status_code=503,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_S)})

    for error in STORE_ERRORS:
        app.add_exception_handler(error, on_store_unavailable)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": "the request is invalid"},
             "detail": field_errors(exc)},
            status_code=422,
        )
