"""A webhook receiver on loopback, and the sender driven round by round."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from ordersvc.config import Settings, get_settings
from ordersvc.keyring import keyring
from ordersvc.webhooks import addresses, sender
from tests.fulfilment.conftest import empty_queue, worker_token  # noqa: F401 (fixtures)
from tests.support import Customer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verified_with(self, secret: str) -> dict[str, Any]:
        """The event, if its signature verifies with `secret` (the `standardwebhooks` library)."""
        verified: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return verified


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (then 200), after `delay` seconds."""

    port: int
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver says no " * 200)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.received]


@pytest.fixture(autouse=True)
async def only_this_tests_endpoints(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Endpoints of earlier tests (and runs) get nothing more: their ports may be a new receiver's."""
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("UPDATE webhook_endpoints SET enabled = false WHERE enabled"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(0)
    found.start()
    assert found.server is not None
    found.port = found.server.server_address[1]
    yield found
    found.stop()


def sender_settings(**changes: Any) -> Settings:
    return get_settings().model_copy(
        update={"webhooks_allow_loopback": True, "webhooks_retry_base_seconds": 0.05, **changes}
    )


Deliver = Callable[..., Awaitable[int]]


@pytest.fixture
def deliver(sessionmaker: async_sessionmaker[AsyncSession]) -> Deliver:
    """Sender rounds until `until()` holds (or rounds run out): returns deliveries that succeeded."""

    async def run(
        until: Callable[[], bool] | None = None,
        *,
        rounds: int = 40,
        settings: Settings | None = None,
        resolver: addresses.Resolver = addresses.system_resolver,
    ) -> int:
        import asyncio

        chosen = settings or sender_settings()
        client = sender.Sender(allow_loopback=chosen.webhooks_allow_loopback, resolver=resolver)
        total = 0
        for _ in range(rounds):
            total += await sender.run_round(sessionmaker, chosen, keyring(chosen), client)
            if until is not None and until():
                break
            await asyncio.sleep(0.06)
        return total

    return run


async def create_endpoint(client: httpx.AsyncClient, customer: Customer, url: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, **fields}, headers={"X-API-Key": customer.api_key}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def endpoint_row_id(maker: async_sessionmaker[AsyncSession], public_id: str) -> int:
    async with maker() as session:
        found = await session.scalar(sa.text("SELECT id FROM webhook_endpoints WHERE public_id = :p"), {"p": public_id})
    assert found is not None
    return int(found)
