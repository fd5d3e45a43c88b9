"""A scriptable HTTP server on 127.0.0.1 for the shared hosted-client tests, and a guard that no test connects
anywhere else.

Each route answers with a list of `Reply`s in order (the last one repeats), so one test can script "503, 503,
then 200", a download that drops half-way and then succeeds, a stall, a redirect, an oversized or chunked body.
Every request received is logged (method, path, query, headers, body) so tests can count submits and cancels.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fakes.server import Handler, LocalServer


@dataclass
class Reply:
    status: int = 200
    json: Any = None  # a JSON body (sets Content-Type: application/json)
    body: bytes = b""  # a raw body, when json is None
    content_type: str | None = None  # default: application/json for json, else application/octet-stream
    headers: dict = field(default_factory=dict)  # extra headers, e.g. Retry-After, Location
    delay: float = 0.0  # seconds before the answer starts
    pieces: int = 1  # send the body in this many pieces ...
    gap: float = 0.0  # ... this many seconds apart
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    length: int | None = None  # the Content-Length to declare (default: the real one; ignored when chunked)
    stall: float = 0.0  # after the first piece, wait this long before sending the rest
    drop: bool = False  # close the connection without answering
    drop_after: int | None = None  # send the headers (full length) and this many body bytes, then close


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, headers={"Location": location})


class GenericServer(LocalServer):
    """`with GenericServer() as server:`; `server.route("GET", "/x", Reply(...), ...)`; `server.url("/x")`."""

    def __init__(self):
        super().__init__()
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.log: list[Seen] = []
        self._lock = threading.Lock()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method.upper(), path)] = list(replies)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(1 for seen in self.log if (method is None or seen.method == method)
                   and (path is None or seen.path == path))

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            replies = self.routes.get((method, path))
            if not replies:
                return Reply(404, json={"detail": f"no route for {method} {path}"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def serve(self, h: Handler) -> None:
        parts = urlsplit(h.path)
        body = h.read_body()
        self.log.append(Seen(h.command, parts.path, parse_qs(parts.query), dict(h.headers), body))
        reply = self._next(h.command, parts.path)
        if reply.delay and self.stopping.wait(reply.delay):
            return
        if reply.drop:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(reply.json).encode() if reply.json is not None else reply.body
        ctype = reply.content_type or ("application/json" if reply.json is not None else "application/octet-stream")
        h.send_response(reply.status)
        h.send_header("Content-Type", ctype)
        for name, value in reply.headers.items():
            h.send_header(name, value)
        if reply.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(reply.length if reply.length is not None else len(data)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if reply.drop_after is not None:
            h.wfile.write(data[:reply.drop_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        step = max(1, -(-len(data) // max(1, reply.pieces)))
        for index, start in enumerate(range(0, len(data), step)):
            if index and self.stopping.wait(reply.stall if index == 1 and reply.stall else reply.gap):
                return
            piece = data[start:start + step]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece)
            h.wfile.flush()
        if reply.chunked:
            h.wfile.write(b"0\r\n\r\n")
        if reply.length is not None and reply.length != len(data):
            h.close_connection = True


class OutsideConnection(AssertionError):
    """A test tried to connect to something other than this machine."""


@contextlib.contextmanager
def loopback_only():
    """Within the block any socket connect to a non-loopback address fails (and is recorded), so a test can prove
    that a refused URL was never contacted and no test can reach the network."""
    attempts: list = []
    original = socket.socket.connect

    def connect(sock, address):
        host = address[0] if sock.family in (socket.AF_INET, socket.AF_INET6) else "localhost"  # a Unix socket
        if host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("127."):
            attempts.append(address)
            raise OutsideConnection(f"test tried to connect to {address}")
        return original(sock, address)

    socket.socket.connect = connect
    try:
        yield attempts
    finally:
        socket.socket.connect = original


@pytest.fixture(autouse=True)
def no_outside_connections():
    """Imported by a test module: none of its tests may reach past 127.0.0.1, even when the code under test is
    wrong."""
    with loopback_only() as outside:
        yield
    assert outside == []
