"""Per-request context: correlation id bound to every log line, and the actor."""

from __future__ import annotations

import datetime as dt

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi_headers import header
from api.middleware import idempotency_key
from domain.context import Actor, CommandContext
from domain.ids import uuid4

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_NAME = CORRELATION_HEADER.encode()


class CorrelationMiddleware:
    """Takes the caller's X-Correlation-ID (or makes one), binds it for structlog and
    echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = (header(scope, _CORRELATION_NAME) or b"").decode("latin-1").strip()
        correlation_id = raw[:128] if raw else str(uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"], (_CORRELATION_NAME, correlation_id.encode())
                ]
            await send(message)

        # Set and reset rather than bound_contextvars(), which copies and walks the whole
        # context to save what it overwrites: each request runs in a task of its own.
        tokens = structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


def actor_of(request: Request) -> Actor:
    """The acting user, from the verified token (api.security.guard) — never from the body
    or from headers the caller could set freely."""
    principal = request.state.principal
    return Actor(actor_id=principal.subject[:128], role=request.state.role,
                 organisation=(principal.organisation or "unknown")[:128])


def command_context(request: Request, effective_date: dt.date | None) -> CommandContext:
    return CommandContext(
        actor=actor_of(request),
        effective_date=effective_date or dt.date.today(),
        correlation_id=request.state.correlation_id,
        # The Idempotency-Key, so a retry after a crash finds this command's events.
        causation_id=idempotency_key(request.headers) or str(uuid4()),
    )
