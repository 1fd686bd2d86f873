"""`ordersvc serve` as operators run it: JSON logs without secrets, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.fulfilment import service as fulfilment
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.orders.test_endpoints import auth
from tests.support import run_cli, serve

WEBHOOK_SECRET = "chain-" + uuid.uuid4().hex
CONSENT_TOKEN = "c" + uuid.uuid4().hex  # well-formed or not, a path token is never logged


class TestLogs:
    async def test_every_line_is_json_with_request_ids_and_no_secret(
        self,
        database_url: str,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker.begin() as session:
            _, worker_token = await fulfilment.create_worker(session, name=f"log-{uuid.uuid4().hex[:8]}")
        env = {**os.environ, "ORDERSVC_CHAIN_WEBHOOK_SECRETS": WEBHOOK_SECRET, "ORDERSVC_MAILER_IN_SERVE": "false"}
        body = json.dumps(
            {
                "network": "BTC",
                "address": "bc1nowhere",
                "tx_hash": uuid.uuid4().hex,
                "amount_usd": "1",
                "confirmations": 9,
            }
        ).encode()
        t = int(time.time())
        signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        key = customer.api_key
        with serve(tmp_path, env=env) as server:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                await client.post(f"/api?key={key}", json={"action": "balance"}, headers={"X-Request-ID": "trace-me-1"})
                await client.post("/api", json={"action": "balance", "key": key})
                await client.post("/api", json={"action": "balance"}, headers={"X-API-Key": key})
                await client.get("/v1/balance", headers=auth(customer))
                await client.get(f"/v1/orders/{key}", headers=auth(customer))  # a key pasted into a path
                await client.get("/v1/balance", headers={"Authorization": f"Bearer {key}x"})  # a wrong key
                await client.post(
                    "/v1/fulfilment/claim", json={"limit": 1}, headers={"Authorization": f"Bearer {worker_token}"}
                )
                await client.post(
                    "/webhooks/chain",
                    content=body,
                    headers={"Ordersvc-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"},
                )
                await client.get(f"/consent/confirm/{CONSENT_TOKEN}")  # a signed link's token
        log = server.log()
        lines = [line for line in log.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        requests = [r for r in records if r.get("event") == "request"]
        assert len(requests) >= 8
        assert all(len(r["request_id"]) > 0 and r["status"] > 0 and "duration_ms" in r for r in requests)
        assert {
            "method": "POST",
            "path": "/api",
            "query": "key=[REDACTED]",
            "request_id": "trace-me-1",
        }.items() <= next(r for r in requests if r["request_id"] == "trace-me-1").items()
        assert any(r["route"] == "/v1/orders/{order_id}" and "osk_[REDACTED]" in r["path"] for r in requests)
        assert any(r["route"] == "/consent/{action}/{token}" and r["path"] == r["route"] for r in requests)
        for secret in (key, key[12:], worker_token, worker_token[12:], signature, WEBHOOK_SECRET, CONSENT_TOKEN):
            assert secret not in log


class TestGracefulShutdown:
    async def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(
        self,
        database_url: str,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        customer = await make_customer(balance="5")
        env = {**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false", "ORDERSVC_SHUTDOWN_GRACE_SECONDS": "20"}
        with serve(tmp_path, env=env) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                async with sessionmaker.begin() as session:
                    # Hold the account's row: the order below waits for it, in flight.
                    await session.execute(
                        sa.text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": customer.account_id}
                    )
                    in_flight = asyncio.create_task(
                        client.post(
                            "/v1/orders", json={"email": "s@example.com", "quantity": 1000}, headers=auth(customer)
                        )
                    )
                    await asyncio.sleep(0.5)
                    server.process.send_signal(signal.SIGTERM)
                    await asyncio.sleep(1.0)
                    # No new connections while it drains...
                    try:
                        async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as fresh:
                            refused = (await fresh.get("/healthz")).status_code != 200
                    except httpx.TransportError:
                        refused = True
                    assert refused
                    assert server.process.poll() is None  # ...and it waits for the order
                    assert not in_flight.done()
                # The row is released here: the order goes through and is answered.
                answer = await in_flight
            assert answer.status_code == 201, answer.text
            # uvicorn finishes its shutdown, then re-raises the signal: -SIGTERM is a clean exit.
            assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert await snapshot(sessionmaker, customer) == ("4.00", 2, 1)
        log = server.log()
        assert "Traceback" not in log
        assert log.index("Shutting down") < log.index('"status": 201') < log.index("Application shutdown complete")


class TestWorkers:
    async def test_each_worker_listens_on_its_own_socket_and_connections_are_spread(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """`serve --workers 2`: one SO_REUSEPORT socket per worker, so that the kernel spreads
        connections over them, and a SIGTERM still ends every worker cleanly."""
        import psutil

        env = {**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false"}
        with serve(tmp_path, env=env, extra=("--workers", "2")) as server:
            port = int(server.base_url.rsplit(":", 1)[1])
            deadline = time.monotonic() + 30
            while True:  # both workers up
                workers = psutil.Process(server.process.pid).children(recursive=True)
                listening = {
                    w.pid
                    for w in workers
                    for c in w.net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port
                }
                if len(listening) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert len(listening) == 2  # a listening socket in each worker...
            supervisor = psutil.Process(server.process.pid).net_connections(kind="tcp")
            assert not [c for c in supervisor if c.status == psutil.CONN_LISTEN and c.laddr.port == port]  # ...not here
            limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
            async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as client:
                answers = await asyncio.gather(*(client.get("/healthz") for _ in range(40)))
                assert {a.status_code for a in answers} == {200}
                held = {
                    pid: sum(
                        1
                        for c in psutil.Process(pid).net_connections(kind="tcp")
                        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                    )
                    for pid in listening
                }
            assert sum(held.values()) == 40
            assert min(held.values()) >= 5, held  # spread by the kernel (a 40/0 split: 2^-39)
            # A second `serve` on the same port is refused, not let in to share the traffic.
            second = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2", env=env, timeout=60)
            assert second.returncode != 0
            assert "cannot listen on" in second.stderr
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.log()

    async def test_a_worker_slower_to_start_than_the_health_check_is_not_killed(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """On a slow machine a spawned worker takes longer than uvicorn's 5 s health check to
        reach its first line (it imports the whole service first). It must be let start, not
        killed and spawned again for ever: here each worker's process sleeps 7 s before it
        runs anything (a `sitecustomize` on its path)."""
        import psutil

        slow = tmp_path / "slow"
        slow.mkdir()
        (slow / "sitecustomize.py").write_text(
            "import sys, time\nif '--multiprocessing-fork' in sys.orig_argv:\n    time.sleep(7)\n"
        )
        env = {
            **os.environ,
            "ORDERSVC_MAILER_IN_SERVE": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(slow), os.environ.get("PYTHONPATH")])),
        }
        with serve(tmp_path, env=env, extra=("--workers", "2")) as server:
            port = int(server.base_url.rsplit(":", 1)[1])
            deadline = time.monotonic() + 60
            while True:  # both workers up
                listening = {
                    w.pid
                    for w in psutil.Process(server.process.pid).children(recursive=True)
                    for c in w.net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port
                }
                if len(listening) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert len(listening) == 2
            await asyncio.sleep(6)  # beyond another health check's timeout
            assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
            log = server.log()
            assert "died" not in log
            assert log.count("Started server process") == 2
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)


def _exchange(port: int, *chunks: bytes, pause: float = 0.0) -> tuple[bytes, int]:
    """Send the chunks on a raw connection (pausing between them), then read until the server
    closes. Returns what it answered and how many bytes it took before refusing more."""
    import socket

    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
                time.sleep(pause)
        except OSError:  # the server closed while we were still sending
            pass
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer, sent


class TestRequestHead:
    async def test_the_head_is_capped_at_16_kib_however_it_arrives(self, tmp_path: Path) -> None:
        """httptools has no cap of its own: a head over 16 KiB is answered 400 and the connection
        closed, whether it comes in one piece, as many headers, or as one value trickled in."""
        from ordersvc.ops.http import MAX_HEAD_BYTES

        env = {**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false"}
        with serve(tmp_path, env=env) as server:
            port = int(server.base_url.rsplit(":", 1)[1])
            start = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"

            ok, _ = await asyncio.to_thread(_exchange, port, start + b"X-Big: " + b"a" * 12_000 + b"\r\n\r\n")
            assert ok.startswith(b"HTTP/1.1 200 "), ok[:100]

            one_value, _ = await asyncio.to_thread(_exchange, port, start + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            many = start + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(400)) + b"\r\n"
            many_headers, _ = await asyncio.to_thread(_exchange, port, many)
            for refused in (one_value, many_headers):
                assert refused.startswith(b"HTTP/1.1 400 "), refused[:100]
                assert b"connection: close" in refused.lower()

            # One header value, 100 bytes at a time, never ending: refused soon after the cap.
            trickle = [start + b"X-Slow: "] + [b"s" * 100] * 1_000
            trickled, sent = await asyncio.to_thread(_exchange, port, *trickle, pause=0.002)
            assert trickled.startswith(b"HTTP/1.1 400 "), trickled[:100]
            assert b"Request head too large." in trickled
            assert sent < MAX_HEAD_BYTES + 64 * 1024  # it stopped reading: not the 100 KB we had

            # A body is not a head: a 30 KB body after a small head is read and answered.
            body = b'{"action":"balance","key":"' + b"k" * 30_000 + b'"}'
            post = b"POST /api HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
            posted, _ = await asyncio.to_thread(
                _exchange, port, post + b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            assert posted.startswith(b"HTTP/1.1 200 "), posted[:100]
            assert posted.endswith(b'\r\n\r\n{"error":"Invalid key."}'), posted[-100:]

            # The cap is per request: on one keep-alive connection, three 10 KB heads one after
            # the other, then three sent together (pipelined), are all answered.
            def head(n: int, close: bool = False) -> bytes:
                last = b"Connection: close\r\n" if close else b""
                return b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n%s\r\n" % (b"p" * 10_000, last)

            def keep_alive() -> list[bytes]:
                import socket

                answers = []
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    for _ in range(3):
                        sock.sendall(head(0))
                        data = b""
                        while b'{"status":"ok"}' not in data:
                            data += sock.recv(65536)
                        answers.append(data)
                    sock.sendall(head(0) + head(0) + head(0, close=True))
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                    answers.append(data)
                return answers

            *one_by_one, pipelined = await asyncio.to_thread(keep_alive)
            assert all(a.startswith(b"HTTP/1.1 200 ") for a in one_by_one), one_by_one
            assert pipelined.count(b"HTTP/1.1 200 ") == 3, pipelined[:300]

            # A chunked body's trailers are capped too: a trailer trickled in after the last
            # chunk is refused soon after 16 KiB.
            chunked = (
                b"POST /api HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: "
            )
            trailed, sent = await asyncio.to_thread(_exchange, port, chunked, *[b"t" * 100] * 1_000, pause=0.002)
            assert trailed.startswith(b"HTTP/1.1 400 "), trailed[:100]
            assert b"Request head too large." in trailed
            assert sent < MAX_HEAD_BYTES + 64 * 1024
            # ...while a short trailer is fine.
            short = chunked.replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n") + b"1\r\n\r\n"
            answered, _ = await asyncio.to_thread(_exchange, port, short)
            assert answered.startswith(b"HTTP/1.1 200 "), answered[:100]
        assert "Traceback" not in server.log()


class TestForwardedFor:
    async def test_the_client_is_named_by_trusted_proxies_only(self, tmp_path: Path) -> None:
        """`ORDERSVC_FORWARDED_ALLOW_IPS` reaches uvicorn: X-Forwarded-For names the client only
        when the connection comes from a listed proxy (here loopback, the default), and is
        ignored otherwise. The access log shows the address the service uses."""

        async def client_seen(env: dict[str, str]) -> str:
            with serve(tmp_path, env={**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false", **env}) as server:
                async with httpx.AsyncClient(base_url=server.base_url) as client:
                    answer = await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
                    assert answer.status_code == 200
                    request_id = answer.headers["X-Request-ID"]
                records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
            (line,) = [r for r in records if r.get("event") == "request" and r.get("request_id") == request_id]
            return str(line["client"])

        assert await client_seen({}) == "203.0.113.7"  # loopback is a trusted proxy by default
        assert await client_seen({"ORDERSVC_FORWARDED_ALLOW_IPS": "10.9.9.9"}) == "127.0.0.1"
        assert await client_seen({"ORDERSVC_FORWARDED_ALLOW_IPS": "*"}) == "203.0.113.7"
