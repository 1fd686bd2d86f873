"""CSV exports take one of the process's export slots while they stream (`csv_export.ExportSlots`):
a caller holds at most `export_max_per_caller` at once (429 `too_many_exports`), the process at
most `export_max_concurrent` (503 `exports_busy`), and a slot comes back when its export ends,
fails or its client goes away. The streams here are driven at the ASGI level, so that one can be
held open (a client reading slowly) while the next requests arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordersvc.csv_export import ExportsBusy, ExportSlots, TooManyExports
from tests.conftest import MakeCustomer


def test_slots_count_per_owner_and_in_all_and_operators_have_their_own() -> None:
    slots = ExportSlots(total=3, per_owner=2)
    a1, a2 = slots.take("account:1"), slots.take("account:1")
    with pytest.raises(TooManyExports):
        slots.take("account:1")
    b1 = slots.take("account:2")
    with pytest.raises(ExportsBusy):
        slots.take("account:3")
    a1()
    a1()  # giving back twice gives back once
    assert slots.running == 2
    c1 = slots.take("account:3")
    operators = [slots.take("operator:1"), slots.take("operator:2"), slots.take("operator:3")]  # not held up
    with pytest.raises(ExportsBusy):
        slots.take("operator:4")
    for give_back in (a2, b1, c1, *operators):
        give_back()
    assert slots.running == 0


class HeldExport:
    """One export request on the app itself, whose client takes the head and then stops reading
    until `release` (or is cancelled: a client that went away)."""

    def __init__(self, app: FastAPI, path: str, api_key: str) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.status: int | None = None
        self.body = b""
        self._body_sent = False
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {api_key}".encode())],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
            "state": {},
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects by itself
        raise AssertionError

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started.set()
            await self.release.wait()  # a slow reader: the stream waits on the client
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


@pytest.fixture
async def held(app: FastAPI) -> AsyncIterator[list[HeldExport]]:
    streams: list[HeldExport] = []
    yield streams
    for stream in streams:
        stream.task.cancel()
    await asyncio.gather(*(s.task for s in streams), return_exceptions=True)


async def _hold(app: FastAPI, held: list[HeldExport], path: str, api_key: str) -> HeldExport:
    stream = HeldExport(app, path, api_key)
    held.append(stream)
    await asyncio.wait_for(stream.started.wait(), 10)
    assert stream.status == 200
    return stream


async def test_a_caller_streams_two_exports_at_once_and_a_slot_comes_back(
    app: FastAPI, client: httpx.AsyncClient, make_customer: MakeCustomer, held: list[HeldExport]
) -> None:
    customer = await make_customer("1.00")
    auth = {"Authorization": f"Bearer {customer.api_key}"}
    first = await _hold(app, held, "/v1/orders/export", customer.api_key)
    second = await _hold(app, held, "/v1/payments/export", customer.api_key)
    refused = await client.get("/v1/deposits/export", headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_exports")
    assert refused.headers["Retry-After"] == "5"
    other = await make_customer("1.00")  # another customer is not held up by this one
    assert (
        await client.get("/v1/orders/export", headers={"Authorization": f"Bearer {other.api_key}"})
    ).status_code == 200

    first.release.set()  # read to the end
    await asyncio.wait_for(first.task, 10)
    assert first.body.startswith(b"id,email,quantity")
    second.task.cancel()  # the client went away mid-stream
    await asyncio.gather(second.task, return_exceptions=True)
    assert app.state.export_slots.running == 0
    assert (await client.get("/v1/deposits/export", headers=auth)).status_code == 200


async def test_the_process_streams_only_so_many_exports(
    app: FastAPI, client: httpx.AsyncClient, make_customer: MakeCustomer, held: list[HeldExport]
) -> None:
    slots: ExportSlots = app.state.export_slots
    customers = [await make_customer("1.00") for _ in range(slots.total + 1)]
    for customer in customers[: slots.total]:
        await _hold(app, held, "/v1/orders/export", customer.api_key)
    busy = await client.get("/v1/orders/export", headers={"Authorization": f"Bearer {customers[-1].api_key}"})
    assert (busy.status_code, busy.json()["code"]) == (503, "exports_busy")
    assert busy.headers["Retry-After"] == "5"
    assert (
        await client.get("/v1/balance", headers={"Authorization": f"Bearer {customers[-1].api_key}"})
    ).status_code == 200
    held[0].release.set()
    await asyncio.wait_for(held[0].task, 10)
    again = await client.get("/v1/orders/export", headers={"Authorization": f"Bearer {customers[-1].api_key}"})
    assert again.status_code == 200


async def test_a_request_that_fails_after_taking_its_slot_gives_it_back(
    app: FastAPI, client: httpx.AsyncClient, make_customer: MakeCustomer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot is the request's (a request-scoped dependency), not the response's: a request that
    fails once the slot is taken, before any response exists, gives it back too."""
    from ordersvc import csv_export

    customer = await make_customer("1.00")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the response could not be built")

    monkeypatch.setattr(csv_export, "StreamingResponse", broken)
    for _ in range(app.state.export_slots.per_owner + 1):
        failed = await client.get("/v1/orders/export", headers={"Authorization": f"Bearer {customer.api_key}"})
        assert failed.status_code == 500  # never 429: the earlier failures gave their slots back
    assert app.state.export_slots.running == 0


async def test_giving_a_slot_back_closes_a_stream_left_mid_way() -> None:
    """A client that goes away mid-export leaves the body suspended at a chunk, its session (a
    pooled connection and a snapshot) still open inside: the slot closes it as it is given back."""
    from ordersvc.csv_export import ExportSlot

    slots = ExportSlots(total=1, per_owner=1)
    slot = ExportSlot(slots)
    slot.take("account:1")
    closed: list[bool] = []

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"id,email\r\n"
            yield b"1,a@example.com\r\n"
        finally:
            closed.append(True)  # where the export's `async with maker()` ends

    stream = slot.streams(body())
    assert await anext(stream) == b"id,email\r\n"
    await slot.give_back()
    assert closed == [True]
    assert slots.running == 0
