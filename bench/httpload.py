"""A small HTTP/1.1 load generator on raw asyncio streams: keep-alive connections, requests
prepared as bytes, responses read by Content-Length. Far cheaper per request than a full client,
so that on a shared 2-core machine most of the CPU goes to the service being measured.

Every answer is judged by the caller's `ok(status, body)`: for orders, "an order was placed"
(a legacy refusal is HTTP 200 with an `error` body, so the body is parsed, not only the status).
A request unanswered within `answer_within` seconds is a failure, and its connection is replaced."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def request(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def template(prepared: bytes, *placeholders: bytes) -> Callable[..., bytes]:
    """fill(*values): `prepared` (a request from `request`) with each placeholder replaced, in
    its head and body, and its Content-Length made right: a few byte replacements per request
    instead of building and encoding it again."""
    head, _, body = prepared.partition(b"\r\n\r\n")
    head = re.sub(rb"\r\nContent-Length: *\d+", b"", head, flags=re.IGNORECASE)

    def fill(*values: bytes) -> bytes:
        filled_head, filled_body = head, body
        for placeholder, value in zip(placeholders, values, strict=True):
            filled_head = filled_head.replace(placeholder, value)
            filled_body = filled_body.replace(placeholder, value)
        return b"%s\r\nContent-Length: %d\r\n\r\n%s" % (filled_head, len(filled_body), filled_body)

    return fill


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # successful requests started in the measured window
    failures: int = 0  # failed requests started in the measured window (bad status or body, timeouts)
    timeouts: int = 0  # of which unanswered within the timeout
    elapsed: float = 0.0
    ok_total: int = 0  # successful answers over the whole run: warm-up, window and tail
    failures_total: int = 0  # failed requests over the whole run
    timeouts_total: int = 0  # of which unanswered (the server may still have done the work)
    sent_total: int = 0
    first_failure: bytes = b""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99) * 1000


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, within: float
) -> tuple[int, bytes]:
    async with asyncio.timeout(within):
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        match = CONTENT_LENGTH.search(head)
        body = await reader.readexactly(int(match.group(1))) if match else b""
    return int(head[9:12]), body


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _measure(
    address: tuple[str, int],
    connection: Connection,
    data: bytes,
    ok: Callable[[int, bytes], bool],
    result: Result,
    measured: bool,
    within: float,
) -> Connection:
    """Send one request and count its answer in `result` (in the window too when `measured`);
    the connection to go on with (a new one after a timeout or a broken connection)."""
    reader, writer = connection
    sent = time.perf_counter()
    result.sent_total += 1
    try:
        status, body = await _exchange(reader, writer, data, within)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        writer.close()
        result.failures_total += 1
        result.timeouts_total += isinstance(exc, TimeoutError)
        if measured:
            result.failures += 1
            result.timeouts += isinstance(exc, TimeoutError)
            result.first_failure = result.first_failure or repr(exc).encode()
        return await asyncio.open_connection(*address)
    done = time.perf_counter()
    placed = ok(status, body)
    result.ok_total += placed
    result.failures_total += not placed
    if measured:
        if placed:
            result.latencies.append(done - sent)
        else:
            result.failures += 1
            result.first_failure = result.first_failure or f"{status} ".encode() + body[:200]
    return reader, writer


async def run(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    ok: Callable[[int, bytes], bool],
    warmup_seconds: float = 1.0,
    answer_within: float = 5.0,
) -> Result:
    """`connections` clients, each sending its next request when the last is answered, for
    `seconds` after a warm-up. make_request(n) gives the n-th request of the run (n from 1,
    warm-up included, so that unique keys and addresses stay unique)."""
    result = Result()
    counter = 0
    start = time.perf_counter() + warmup_seconds
    stop = start + seconds

    async def client() -> None:
        nonlocal counter
        connection = await asyncio.open_connection(host, port)
        try:
            while (now := time.perf_counter()) < stop:
                counter += 1
                connection = await _measure(
                    (host, port), connection, make_request(counter), ok, result, now >= start, answer_within
                )
        finally:
            connection[1].close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.elapsed = time.perf_counter() - start
    return result


async def alternate(
    host: str,
    port: int,
    first: Callable[[int], bytes],
    second: Callable[[int], bytes],
    *,
    seconds: float,
    ok_first: Callable[[int, bytes], bool],
    ok_second: Callable[[int, bytes], bool],
    warmup_seconds: float = 1.0,
    answer_within: float = 5.0,
) -> tuple[Result, Result]:
    """One client on one keep-alive connection sending `first(n)` and `second(n)` in turn, for
    `seconds` after a warm-up: two requests measured at the same moments of the machine, so that
    the ratio of their latencies does not drift with it. A result for each."""
    results = (Result(), Result())
    makers, judges = (first, second), (ok_first, ok_second)
    start = time.perf_counter() + warmup_seconds
    stop = start + seconds
    connection = await asyncio.open_connection(host, port)
    n = 0
    try:
        while (now := time.perf_counter()) < stop:
            n += 1
            which = n % 2
            connection = await _measure(
                (host, port), connection, makers[which](n), judges[which], results[which], now >= start, answer_within
            )
    finally:
        connection[1].close()
    for result in results:
        result.elapsed = time.perf_counter() - start
    return results


async def send_all(
    host: str, port: int, requests: Sequence[bytes], *, connections: int, answer_within: float = 30.0
) -> list[tuple[int, bytes]]:
    """Send each request once, over `connections` keep-alive connections; the answers in order."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    position = 0

    async def client() -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while position < len(requests):
                mine, position = position, position + 1
                answers[mine] = await _exchange(reader, writer, requests[mine], answer_within)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(min(connections, len(requests)))))
    return answers
