"""The HTTP server: uvicorn with the httptools parser, TCP_NODELAY on every connection, a cap on
the request head, and `serve --workers N` with a listening socket per worker.

asyncio turns Nagle's algorithm off only for sockets whose `proto` is IPPROTO_TCP. With
`serve --workers N` uvicorn binds the listening socket itself (`proto` 0) and hands it to the
workers, so their connections keep Nagle on; a response written as headers, then body, then
waits for the client's delayed ACK: about 40 ms per request on a keep-alive connection
(measured by bench/load.py: 48 ms balance reads with 2 workers, 2.3 ms with 1)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Process

MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers (and, apart, a chunked body's trailers). A longer head is answered
400 and the connection closed."""


class HeadTooLarge(Exception):
    pass


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (about a fifth less CPU per request than h11's, measured by
    bench/load.py), with TCP_NODELAY and the head capped at MAX_HEAD_BYTES.

    httptools itself has no cap: a header value (or a chunked body's trailer, or a chunk
    extension) trickled forever would grow without bound. Two counts close that:
    - the parsed head, in the parser's callbacks (an exception raised there makes the parser
      fail, which uvicorn answers 400): the request target and header lines, then apart the
      trailers;
    - the raw bytes received since the parser last made progress (a message began, its head
      ended, a piece of body arrived, it completed): past MAX_HEAD_BYTES, 400. A read that ends
      one message and starts the next is not charged to the next, so the cap holds to within
      one read (uvloop reads at most 256 KiB)."""

    unparsed = 0  # bytes received since the parser last made progress
    parsed_head = 0  # request target and header (or trailer) lines parsed so far

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.unparsed += len(data)
        super().data_received(data)
        if self.unparsed > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.send_400_response("Request head too large.")

    def on_message_begin(self) -> None:
        self.parsed_head = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.unparsed = 0
        self.parsed_head = 0  # trailers, if any, get a cap of their own
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.unparsed = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.unparsed = 0
        super().on_message_complete()

    def _count(self, size: int) -> None:
        self.parsed_head += size
        if self.parsed_head > MAX_HEAD_BYTES:
            raise HeadTooLarge  # the parser fails with it: uvicorn answers 400 and closes


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def reuse_port_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def check_port_free(host: str, port: int) -> None:
    """Fail now (OSError) if anything listens on the port, rather than in every worker. Bound
    without SO_REUSEPORT, so another `serve` that does (its workers would share the port with
    ours, splitting the traffic between two deployments) is refused too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family=family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class ReusePortServer(uvicorn.Server):
    """A worker of `serve --workers N` with a listening socket of its own (SO_REUSEPORT), so that
    the kernel spreads new connections evenly over the workers.

    With one socket shared by every worker (uvicorn's way), whichever worker wakes first
    accepts: a burst of keep-alive connections lands unevenly (bench/load.py saw 42 and 22 of
    64), and the busier worker's clients wait longer (p99 about twice p50)."""

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        try:
            own = _listening_socket(config.host, config.port)
        except OSError as exc:
            logging.getLogger("uvicorn.error").error("cannot listen on %s:%d: %s", config.host, config.port, exc)
            sys.exit(STARTUP_FAILURE)
        logging.getLogger("uvicorn.error").info("worker %s listening on %s:%d", os.getpid(), config.host, config.port)
        super().run(sockets=[own, *(sockets or [])])


class ReusePortProcess(Process):
    """uvicorn's worker process, running a ReusePortServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = ReusePortServer(config=self.config)
        return self._server


def run_workers(config: uvicorn.Config) -> None:
    """uvicorn's supervisor (signals, health pings, restarts of dead workers), whose workers each
    listen on a socket of their own."""
    multiprocess.Process = ReusePortProcess  # type: ignore[misc] # the supervisor builds its workers by this name
    multiprocess.Multiprocess(config, sockets=[]).run()
