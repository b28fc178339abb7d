"""HTTP middleware: `Idempotency-Key` on every command route, and request latency.

A command request (POST/PUT/PATCH/DELETE) with an Idempotency-Key executes once: a repeat
with the same key and the same body gets the first response again and changes nothing;
the same key with a different body is a 422; a repeat while the first is still running is
a 409. The key becomes the causation id of the events (api/context.py), which is how a
request whose process died before recording its response is recognised on a retry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi_headers import header
from api.bootstrap import store_database
from api.errors import (
    STORE_ERRORS,
    STORE_RETRY_AFTER_S,
    STORE_UNAVAILABLE,
    log_store_unavailable,
)
from api.threads import run_in_threadpool
from infra import metrics
from infra.idempotency import (
    MAX_KEY_LENGTH,
    Caused,
    CommandInProgress,
    IdempotencyConflict,
    IdempotencyStore,
    fingerprint,
)

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "idempotency-key"
_IDEMPOTENCY_NAME = IDEMPOTENCY_HEADER.encode()
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Answers that say nothing about the command itself: a retry must be able to do better.
NOT_RECORDED = frozenset({401, 403, 408, 409, 413, 429})


def idempotency_key(headers: Any) -> str | None:
    """The request's Idempotency-Key, if it has a usable one."""
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return None
    return str(key)


def _canonical(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body.decode("latin-1")


async def _json(send: Send, status: int, body: dict[str, Any],
                extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        *extra,
    ]})
    await send({"type": "http.response.body", "body": payload})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._store: IdempotencyStore | None = None

    def _store_for(self, scope: Scope) -> IdempotencyStore:
        if self._store is None:
            kosh = scope["app"].state.kosh
            self._store = IdempotencyStore(store_database(kosh.settings), kosh.app.recorder,
                                           kosh.settings.idempotency_claim_timeout_s)
        return self._store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in COMMAND_METHODS:
            await self.app(scope, receive, send)
            return
        raw_key = header(scope, _IDEMPOTENCY_NAME)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = idempotency_key({IDEMPOTENCY_HEADER: raw_key.decode("latin-1")})
        if key is None:
            await _json(send, 400, {"error": {
                "code": "invalid_idempotency_key",
                "message": f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            }})
            return
        body = await _read_body(receive)
        path = scope["path"]
        print_ = fingerprint("http", scope["method"], path, _canonical(body))
        try:
            store = await run_in_threadpool(self._store_for, scope)
            earlier = await run_in_threadpool(store.begin, key, _command_type(scope),
                                              print_, _recovered)
        except STORE_ERRORS as exc:
            # Out here the app's exception handlers do not apply: the same answer as theirs.
            log_store_unavailable(exc, path)
            await _json(send, 503, STORE_UNAVAILABLE,
                        [(b"retry-after", str(STORE_RETRY_AFTER_S).encode())])
            return
        except IdempotencyConflict as exc:
            await _json(send, 422, {"error": {"code": exc.code, "message": exc.message}})
            return
        except CommandInProgress as exc:
            await _json(send, 409, {"error": {"code": exc.code, "message": exc.message}},
                        [(b"retry-after", b"1")])
            return
        if earlier is not None:
            await _replay(send, earlier.outcome)
            return
        await self._execute(scope, body, send, store, key)

    async def _execute(self, scope: Scope, body: bytes, send: Send, store: IdempotencyStore,
                       key: str) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def receive_once() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive_once, capture)
        except BaseException:
            await run_in_threadpool(store.abandon, key)
            raise
        status = int(start.get("status", 500))
        content = b"".join(chunks)
        response_headers = list(start.get("headers", []))
        if status >= 500 or status in NOT_RECORDED:
            await run_in_threadpool(store.abandon, key)
        else:
            content_type = dict(response_headers).get(b"content-type", b"application/json")
            outcome = {"status": status, "body": content.decode("utf-8", "replace"),
                       "content_type": content_type.decode("latin-1")}
            await run_in_threadpool(store.finish, key, "accepted" if status < 300 else "refused",
                                    outcome)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})


_IDS = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                  r"|\d{6,}")


def _command_type(scope: Scope) -> str:
    """'POST /registrations/{id}/approve': a metrics label without ids or personal data."""
    return f"{scope['method']} {_IDS.sub('{id}', scope['path'])}"[:100]


def _recovered(found: list[Caused]) -> dict[str, Any]:
    """The reply of a request whose process died after storing its events."""
    body = {"case_id": found[0].case_id, "sequence_numbers": [c.seq for c in found],
            "correlation_id": found[0].correlation_id}
    return {"status": 200, "body": orjson.dumps(body).decode(),
            "content_type": "application/json"}


async def _replay(send: Send, outcome: dict[str, Any]) -> None:
    payload = str(outcome.get("body", "")).encode()
    await send({"type": "http.response.start", "status": int(outcome.get("status", 200)),
                "headers": [
                    (b"content-type", str(outcome.get("content_type")).encode("latin-1")),
                    (b"content-length", str(len(payload)).encode()),
                    (b"idempotent-replayed", b"true"),
                ]})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class RequestMetricsMiddleware:
    """Latency by method, route template (never the raw path: it may hold an IIN) and
    status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP_LATENCY.labels(scope["method"], route, str(status[0])).observe(
                time.perf_counter() - began
            )
