"""A lean HTTP/1.1 load generator for the inbound benchmark.

Why not httpx: on a 2-CPU machine the client shares the CPUs with the server under test, and
httpx spends about as much CPU per request as a bare Starlette endpoint does, so it, not the
server, set the ceiling (a bare endpoint measured 408 requests/s through httpx). Requests here
are built (and signed) before the clock starts and written as bytes on keep-alive connections;
the responses are read by Content-Length. Only what the benchmark's servers send is supported.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


def encode(request: Request, host: str) -> bytes:
    lines = [f"POST {request.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Connections to one server, opened as needed and reused."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.every: list[Connection] = []

    async def send(self, raw: bytes) -> tuple[int, bytes, float]:
        """Status, body and latency in seconds (from the write to the last byte)."""
        conn = self.idle.pop() if self.idle else None
        started = time.perf_counter()
        try:
            if conn is None:
                raise ConnectionResetError("no idle connection")
            status, body = await conn.send(raw)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            # The server closed an idle keep-alive connection before reading the request
            # (uvicorn does after 5 s): send it again on a new one, as HTTP clients do.
            conn = await Connection.open(self.host, self.port)
            self.every.append(conn)
            started = time.perf_counter()
            status, body = await conn.send(raw)
        elapsed = time.perf_counter() - started
        self.idle.append(conn)
        return status, body, elapsed

    def close(self) -> None:
        for conn in self.every:
            conn.close()
