"""Writes of one event-loop turn reach the socket as one write, in order; close() sends
what was written before it."""

from __future__ import annotations

import asyncio
from typing import Any

from api.http_protocol import _GatheringTransport


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_one_turn_one_write() -> None:
    async def scenario() -> _Recorder:
        real = _Recorder()
        t = _GatheringTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(bytearray(b'{"ok":'))
        t.write(b"true}")
        assert real.writes == []
        assert t.get_write_buffer_size() == 30
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}', b"next"]


def test_nothing_is_written_to_a_transport_that_closed() -> None:
    async def scenario() -> _Recorder:
        real = _Recorder()
        t = _GatheringTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"late")
        real.closed = True  # the peer went away before the turn ended
        await asyncio.sleep(0)
        return real

    assert asyncio.run(scenario()).writes == []


def test_close_flushes_first() -> None:
    async def scenario() -> _Recorder:
        real = _Recorder()
        t = _GatheringTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"bye")
        t.close()
        await asyncio.sleep(0)
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"bye"] and real.closed
