"""A small HTTP/1.1 load generator on raw asyncio streams: keep-alive connections, requests
prepared as bytes, responses read by Content-Length. Far cheaper per request than a full client,
so that on a shared 2-core machine most of the CPU goes to the service being measured."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def request(method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0
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


async def run(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    ok: Callable[[int, bytes], bool],
    warmup_seconds: float = 1.0,
) -> Result:
    """`connections` clients, each sending its next request when the last is answered, for
    `seconds` after a warm-up. make_request(n) gives the n-th request of the run."""
    result = Result()
    counter = 0
    start = time.perf_counter() + warmup_seconds
    stop = start + seconds

    async def client() -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (now := time.perf_counter()) < stop:
                counter += 1
                writer.write(make_request(counter))
                head = await reader.readuntil(b"\r\n\r\n")
                match = CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                done = time.perf_counter()
                if now >= start:
                    status = int(head[9:12])
                    if ok(status, body):
                        result.latencies.append(done - now)
                    else:
                        result.failures += 1
                        result.first_failure = result.first_failure or head[:12] + body[:200]
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.elapsed = time.perf_counter() - start
    return result
