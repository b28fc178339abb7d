"""uvicorn's httptools protocol, with each response written to the socket in one piece.

uvicorn writes a response's head and its body with two writes; on a local connection each
is a system call that also runs the receiving side's TCP work, with the event loop's
thread holding the GIL throughout (measured: an eighth of that thread's time under load,
the thread every request passes through). The transport below gathers what is written
during one turn of the event loop and sends it at the end of the turn, so a JSON reply
goes out as one segment, no later than before."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _GatheringTransport:
    """Forwards everything to the real transport; buffers write() until the turn ends."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)  # a buffer the caller may reuse before the turn ends
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            if not self._transport.is_closing():  # the peer left: nobody to send it to
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def close(self) -> None:
        self._flush()  # what was written before close() still goes out
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(
            _GatheringTransport(transport, self.loop)  # type: ignore[arg-type]
        )
