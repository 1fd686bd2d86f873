"""`GET /v1/events/stream` on a real server: events as they commit, resumed with Last-Event-ID,
the account's own only, and a bounded number of streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.support import ServerProcess, funded_api_key, serve, unique_email


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("stream")) as process:
        yield process


@asynccontextmanager
async def stream(
    server: ServerProcess, api_key: str, last_event_id: str | None = None
) -> AsyncIterator[tuple[httpx.Response, asyncio.Queue[dict[str, Any]]]]:
    """The stream's response, and a queue of its events (`id`, `event`, parsed `data`)."""
    headers = {"X-API-Key": api_key}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
        client.stream("GET", "/v1/events/stream", headers=headers) as response,
    ):

        async def read() -> None:
            frame: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if not line:
                    if "data" in frame:
                        await events.put(frame)
                    frame = {}
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(": ")
                    frame[name] = json.loads(value) if name == "data" else value

        reader = asyncio.create_task(read()) if response.status_code == 200 else None
        try:
            yield response, events
        finally:
            if reader is not None:
                reader.cancel()


async def next_event(events: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(events.get(), timeout=15)


async def order(server: ServerProcess, api_key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/v1/orders", json={"email": unique_email("to"), "quantity": 1000}, headers={"X-API-Key": api_key}
        )
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def test_events_arrive_live_and_resume_after_the_last_one(server: ServerProcess) -> None:
    api_key = funded_api_key("stream", "10")
    other_key = funded_api_key("stream-other", "10")
    async with stream(server, api_key) as (response, events):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        await order(server, other_key)  # another account's: not in this stream
        placed = await order(server, api_key)
        created = await next_event(events)
        debit = await next_event(events)
    assert (created["event"], created["data"]["type"], created["data"]["data"]["id"]) == (
        "order.created",
        "order.created",
        placed["id"],
    )
    assert created["id"] == created["data"]["id"]
    assert created["data"]["data"] == placed  # the object as the order's answer showed it
    assert (debit["event"], debit["data"]["data"]["order_id"]) == ("payment.created", placed["id"])

    # Reconnecting with the first event's id: what came after it, then what comes next.
    async with stream(server, api_key, last_event_id=created["id"]) as (_, events):
        assert (await next_event(events))["id"] == debit["id"]
        later = await order(server, api_key)
        assert (await next_event(events))["data"]["data"]["id"] == later["id"]


async def test_a_stream_needs_credentials_and_an_account_has_at_most_five(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        assert (await client.get("/v1/events/stream")).status_code == 401
        assert (await client.get("/v1/events/stream", headers={"X-API-Key": "osk_nope"})).status_code == 401
    api_key = funded_api_key("streams", "1")
    async with (
        stream(server, api_key) as (a, _),
        stream(server, api_key) as (b, _),
        stream(server, api_key) as (c, _),
        stream(server, api_key) as (d, _),
        stream(server, api_key) as (e, _),
        stream(server, api_key) as (sixth, _),
    ):
        assert [r.status_code for r in (a, b, c, d, e)] == [200] * 5
        assert sixth.status_code == 429
        await sixth.aread()
        assert json.loads(sixth.content)["code"] == "too_many_streams"
        assert sixth.headers["retry-after"] == "5"
