"""A command sent with an Idempotency-Key while the store cannot be reached (a server out
of connections, say) is answered 503 store_unavailable with Retry-After, as one without a
key is, and the command is not run."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.middleware import IdempotencyMiddleware


class DownStore:
    def begin(self, *args: Any) -> None:
        raise psycopg.OperationalError("FATAL:  sorry, too many clients already")


def test_a_keyed_command_while_the_store_is_down_is_answered_503_and_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[int] = []

    async def submit(request: Any) -> JSONResponse:
        ran.append(1)
        return JSONResponse({}, status_code=201)

    monkeypatch.setattr(IdempotencyMiddleware, "_store_for", lambda self, scope: DownStore())
    app = IdempotencyMiddleware(Starlette(routes=[Route("/registrations", submit,
                                                        methods=["POST"])]))
    reply = TestClient(app).post("/registrations", json={}, headers={"Idempotency-Key": "k-1"})
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "store_unavailable"
    assert reply.headers["retry-after"] == "2"
    assert ran == []
