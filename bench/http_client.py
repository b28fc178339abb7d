"""A lean HTTP/1.1 keep-alive client for load generation.

httpx spends milliseconds of CPU per request; on a two-core machine whose other core
runs the server, that makes the client the bottleneck and the benchmark measure itself.
This client only writes a request and reads a Content-Length response, which is all the
API's JSON replies need."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

# uvicorn closes a keep-alive connection idle for 5 s; one idle for less is reused.
IDLE_REOPEN_S = 3.0


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:500]!r}")
        self.status = status


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items()
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """The decoded JSON reply; raises HttpError on a status of 400 or more."""
        if self.writer is not None and time.monotonic() - self.used > IDLE_REOPEN_S:
            await self.close()  # the server may be closing it right now
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.used = time.monotonic()
        assert self.reader is not None
        body = b"" if json is None else orjson.dumps(json)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.fixed
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                self.writer = None
        reply = await self.reader.readexactly(length) if length else b""
        self.used = time.monotonic()
        if status >= 400:
            raise HttpError(status, reply)
        return orjson.loads(reply) if reply else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Pool:
    """Connections handed out one request at a time."""

    def __init__(self, base_url: str, headers: dict[str, str], size: int) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        self.all = [Connection(host, int(port), headers) for _ in range(size)]
        for c in self.all:
            self.free.put_nowait(c)

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        conn = await self.free.get()
        try:
            return await conn.request(method, path, json)
        except HttpError:
            raise
        except Exception:
            await conn.close()  # a broken connection is reopened by its next request
            raise
        finally:
            self.free.put_nowait(conn)

    async def close(self) -> None:
        for c in self.all:
            await c.close()
