"""Slow clients against a live `serve` (raw sockets on loopback): a request head must arrive
within ORDERSVC_HEAD_TIMEOUT_SECONDS, and a worker holds at most ORDERSVC_MAX_CONNECTIONS
connections. Without both, a client sending `GET /healthz HT`, or a header line every two
seconds, held its connection for ever, and enough of them held the whole server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from ordersvc.config import Settings
from tests.support import ServerProcess, serve

HEAD_TIMEOUT = 3.0
REQUEST_TIMEOUT = 8.0
MAX_CONNECTIONS = 4
SLACK = 3.0  # scheduling on a busy machine: the server's timer, then our read


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[ServerProcess]:
    env = {
        **os.environ,
        "ORDERSVC_MAILER_IN_SERVE": "false",
        "ORDERSVC_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "ORDERSVC_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
        "ORDERSVC_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with serve(tmp_path_factory.mktemp("slow"), env=env) as running:
        time.sleep(0.5)  # the start-up probe's connection is gone
        yield running
    assert "Traceback" not in running.log()


def _connect(server: ServerProcess) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 2 * SLACK + 10)


def _read_to_close(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    return answer


def _read_answer(sock: socket.socket) -> bytes:
    """One keep-alive answer to GET /healthz."""
    data = b""
    while b'{"status":"ok"}' not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def _trickle(sock: socket.socket, pieces: list[bytes], pause: float) -> int:
    """Send the pieces with a pause after each, until the server closes; how many went."""
    sent = 0
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            break
        sent += 1
        time.sleep(pause)
    return sent


class TestTheHeadTimeout:
    def test_the_default_is_ten_seconds_at_most(self) -> None:
        assert 0 < Settings().head_timeout_seconds <= 10

    def test_a_connection_that_never_sends_a_byte_is_closed_without_an_answer(self, server: ServerProcess) -> None:
        with _connect(server) as sock:
            started = time.monotonic()
            answer = _read_to_close(sock)
            waited = time.monotonic() - started
        assert answer == b""  # nothing was asked, so nothing is answered
        assert HEAD_TIMEOUT - 0.5 <= waited <= HEAD_TIMEOUT + SLACK

    def test_an_unfinished_request_line_is_answered_408_and_closed(self, server: ServerProcess) -> None:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HT")
            started = time.monotonic()
            answer = _read_to_close(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert b"connection: close" in answer.lower()
        assert HEAD_TIMEOUT - 0.5 <= waited <= HEAD_TIMEOUT + SLACK

    def test_a_header_line_every_two_seconds_does_not_keep_the_connection(self, server: ServerProcess) -> None:
        lines = [b"GET /healthz HTTP/1.1\r\n"] + [b"X-Slow-%d: v\r\n" % i for i in range(30)]
        with _connect(server) as sock:
            started = time.monotonic()
            sent = _trickle(sock, lines, pause=2.0)
            answer = _read_to_close(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert sent <= HEAD_TIMEOUT / 2 + 2  # every line reset nothing: the clock ran from the start
        assert waited <= HEAD_TIMEOUT + 2 + SLACK

    def test_on_keep_alive_the_next_head_is_due_from_the_end_of_the_answer(self, server: ServerProcess) -> None:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
            answered = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # uvicorn's idle timer stops at this byte
            answer = _read_to_close(sock)
            waited = time.monotonic() - answered
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert HEAD_TIMEOUT - 0.5 <= waited <= HEAD_TIMEOUT + SLACK

    def test_a_slow_head_that_ends_in_time_and_a_slow_body_are_answered(self, server: ServerProcess) -> None:
        """The clock stops when the head is complete: a body may take longer than the head
        timeout (the request timeout bounds it), and so may several requests on one
        connection."""
        body = b'{"action":"balance","key":"nope"}'
        head = b"POST /api HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        with _connect(server) as sock:
            for _ in range(2):
                _trickle(sock, [head[:20], head[20:], b"\r\n"], pause=HEAD_TIMEOUT / 4)
                _trickle(sock, [body[i : i + 4] for i in range(0, len(body), 4)], pause=(HEAD_TIMEOUT + 2) / 9)
                answer = b""
                while not answer.endswith(b'{"error":"Invalid key."}'):
                    chunk = sock.recv(65536)
                    assert chunk, answer
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]

    def test_a_body_trickled_for_ever_ends_with_the_request_timeout(self, server: ServerProcess) -> None:
        head = b"POST /api HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        with _connect(server) as sock:
            sock.sendall(head)
            started = time.monotonic()
            sent = _trickle(sock, [b" "] * 60, pause=0.5)
            answer = _read_to_close(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]  # the legacy API's refusals are 200
        assert answer.endswith(b'{"error":"Request timed out."}'), answer[-100:]
        # Answered at the request timeout; the rest of the body then gets the head timeout.
        assert sent < 60
        assert waited <= REQUEST_TIMEOUT + HEAD_TIMEOUT + 2 * SLACK


class TestTheConnectionCap:
    def test_connections_over_the_cap_are_refused_at_once_and_the_held_ones_still_work(
        self, server: ServerProcess
    ) -> None:
        held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
        try:
            time.sleep(0.3)  # accepted by the server
            with _connect(server) as over:
                started = time.monotonic()
                refused = _read_to_close(over)
                assert time.monotonic() - started < 1.5  # not after a timeout: at once
            assert refused.startswith(b"HTTP/1.1 503 "), refused[:100]
            assert refused.endswith(b"Too many connections.")
            held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert _read_to_close(held[0]).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.5)  # their places are free again
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert _read_to_close(sock).startswith(b"HTTP/1.1 200 ")
