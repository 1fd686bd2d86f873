"""The HTTP server: uvicorn with the httptools parser, TCP_NODELAY on every connection, a cap on
the request head and on the time it takes to arrive, a cap on connections per worker, and
`serve --workers N` with a listening socket per worker.

asyncio turns Nagle's algorithm off only for sockets whose `proto` is IPPROTO_TCP. With
`serve --workers N` uvicorn binds the listening socket itself (`proto` 0) and hands it to the
workers, so their connections keep Nagle on; a response written as headers, then body, then
waits for the client's delayed ACK: about 40 ms per request on a keep-alive connection
(measured by bench/load.py: 48 ms balance reads with 2 workers, 2.3 ms with 1)."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import sys
import time
from collections.abc import Iterable
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Process

from ordersvc.config import get_settings

MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers (and, apart, a chunked body's trailers). A longer head is answered
400 and the connection closed."""


class HeadTooLarge(Exception):
    pass


def _plain_answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
        + str(len(text)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + text
    )


TOO_MANY_CONNECTIONS = _plain_answer(b"503 Service Unavailable", b"Too many connections.")
HEAD_TIMED_OUT = _plain_answer(b"408 Request Timeout", b"Request head not received in time.")


class _Tally:
    """Counts refused connections of one kind and logs them at most once a minute: a flood of
    them is one line a minute, not one line each."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.count = 0
        self.logged_at = -60.0

    def add(self, logger: logging.Logger) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= 60:
            logger.warning(self.message, self.count)
            self.count, self.logged_at = 0, now


class CoalescingTransport(asyncio.Transport):
    """A connection's transport whose writes of one turn of the event loop leave together.

    uvicorn writes an answer's head and its body apart: two system calls and two TCP segments
    per answer (the writes were a tenth of a worker's CPU in a profile under bench/load.py).
    Here a write is held until the end of the loop's current turn (or a close), when everything
    held goes out in one write, in the order written. Nothing waits longer than that turn, and
    flow control sees the bytes held as buffered."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        if self._held:
            data = b"".join(self._held) if len(self._held) > 1 else self._held[0]
            self._held.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


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
      one read (uvloop reads at most 256 KiB).

    A slow client is bounded in time and in number too (uvicorn bounds neither):
    - a head not complete within ORDERSVC_HEAD_TIMEOUT_SECONDS of the connection opening, or
      of the previous answer ending, closes the connection: 408 if part of a head came, else
      nothing. Once the head is complete, ORDERSVC_REQUEST_TIMEOUT_SECONDS bounds the body and
      the answer (RequestContextMiddleware reads the body inside it);
    - a connection beyond ORDERSVC_MAX_CONNECTIONS open in this worker is answered 503 and
      closed at once. uvicorn's `limit_concurrency` would not do: it counts connections too,
      but acts only once a head is complete, answering the clients that finished theirs 503
      while the slow ones keep their places."""

    unparsed = 0  # bytes received since the parser last made progress
    parsed_head = 0  # request target and header (or trailer) lines parsed so far
    head_started = False  # a byte of a request head has arrived, and the head is not complete
    head_timer: asyncio.TimerHandle | None = None
    refused_over_cap = _Tally("refused %d connection(s) over ORDERSVC_MAX_CONNECTIONS")
    timed_out_heads = _Tally("closed %d connection(s) whose request head took over ORDERSVC_HEAD_TIMEOUT_SECONDS")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        settings = get_settings()
        if len(self.connections) >= settings.max_connections:
            # Refused at once, before a byte is read: a slow client holds no slot it did not get.
            self.transport = transport
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            self.refused_over_cap.add(self.logger)
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head_timeout = settings.head_timeout_seconds
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        """A request head is due within head_timeout (uvicorn has no such limit: a head that
        never ends, or a first byte that never comes, held the connection for ever; its
        keep-alive timer starts only after a response, and any byte stops it)."""
        self._stop_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        self.timed_out_heads.add(self.logger)
        if self.head_started:
            self.transport.write(HEAD_TIMED_OUT)
        # Without a byte of a request, nothing is answered: a client that sent its request just
        # now on an idle keep-alive connection would read a 408 as the answer to it.
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer only when no pipelined request is waiting: then the
        # connection waits for a new head, and that wait is bounded too. (A body still arriving
        # after an early answer is bounded by the same timer.)
        if self.timeout_keep_alive_task is not None:
            self._await_head()

    def data_received(self, data: bytes) -> None:
        self.unparsed += len(data)
        super().data_received(data)
        if self.unparsed > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.send_400_response("Request head too large.")

    def on_message_begin(self) -> None:
        self.parsed_head = 0
        self.head_started = True
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_started = False
        self._stop_head_timer()  # from here the request timeout bounds the body and the answer
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


WORKER_START_SECONDS = 120.0
"""How long a new worker may take to answer its supervisor's first health check."""


class ReusePortProcess(Process):
    """uvicorn's worker process, running a ReusePortServer, and given time to start.

    uvicorn's supervisor pings each worker every half second and kills one that does not answer
    within 5 s (`timeout_worker_healthcheck`). A spawned worker answers only once it has imported
    the service (the CLI, FastAPI, SQLAlchemy: several seconds of CPU where no bytecode is
    cached, more when both workers start at once on 2 busy cores), so on a slow machine every new
    worker was killed before it could answer, and started again, for ever: `serve --workers 2`
    ran on one worker and a restart loop. Until its first answer a worker is alive while its
    process is (one ping waits in its pipe for it); after `WORKER_START_SECONDS` without one, or
    once it has answered, uvicorn's own check applies."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self._created = time.monotonic()
        self._answered = False
        self._asked = False

    def ping(self, timeout: float = 5) -> bool:
        if self._answered or time.monotonic() - self._created > WORKER_START_SECONDS:
            return super().ping(timeout)
        try:
            if not self._asked:
                self.parent_conn.send(b"ping")
                self._asked = True
            if self.parent_conn.poll(min(timeout, 0.5)):
                self.parent_conn.recv()
                self._answered = True
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        return True

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
