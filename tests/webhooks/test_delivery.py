"""Webhooks end to end: a receiver on loopback verifies every delivery with the
`standardwebhooks` library; events arrive once per attempt, in order, retried, after an outage,
and after the sender is killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.support import ORDERSVC, Customer, confirm_recipient, free_port, unique_email
from tests.webhooks.conftest import Deliver, Receiver, create_endpoint, endpoint_row_id


def key(customer: Customer) -> dict[str, str]:
    return {"X-API-Key": customer.api_key}


async def place(client: httpx.AsyncClient, customer: Customer, email: str, quantity: int = 1000) -> dict[str, Any]:
    response = await client.post("/v1/orders", json={"email": email, "quantity": quantity}, headers=key(customer))
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def test_every_event_type_arrives_signed_and_in_order(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
    empty_queue: None,
    worker_token: Any,
) -> None:
    customer = await make_customer(balance="20.00")
    assert (await client.put("/v1/balance/alert", json={"threshold": "15"}, headers=key(customer))).json() == {
        "threshold": "15.00",
        "currency": "USD",
    }
    endpoint = await create_endpoint(client, customer, receiver.url)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    to = unique_email("to")
    await confirm_recipient(sessionmaker, customer, to)
    placed = await place(client, customer, to, 10_000)
    as_placed = (await client.get(f"/v1/orders/{placed['id']}", headers=key(customer))).json()
    payments = (await client.get("/v1/payments", headers=key(customer))).json()["data"]

    worker = {"Authorization": f"Bearer {await worker_token()}"}
    claimed = (await client.post("/v1/fulfilment/claim", json={"limit": 10}, headers=worker)).json()["data"]
    assert [c["id"] for c in claimed] == [placed["id"]]
    progress = await client.post(
        f"/v1/fulfilment/orders/{placed['id']}/progress", json={"delivered": 2500}, headers=worker
    )
    assert progress.status_code == 200, progress.text
    done = await client.post(f"/v1/fulfilment/orders/{placed['id']}/complete", headers=worker)
    assert done.status_code == 200, done.text

    expected = [
        "order.created",
        "payment.created",
        "balance.low",
        "order.status_changed",  # pending -> in progress
        "order.progress",  # 25
        "order.progress",  # 100
        "order.status_changed",  # in progress -> completed
    ]
    await deliver(lambda: len(receiver.received) >= len(expected))
    await deliver(rounds=3)  # and nothing more comes
    events = [r.verified_with(secret) for r in receiver.received]
    assert [e["type"] for e in events] == expected
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == len(ids)  # once each: every attempt succeeded
    assert [e["id"] for e in events] == ids
    assert ids == sorted(ids, key=lambda i: int(i.removeprefix("evt_")))

    created, debit, low, started, quarter, full, completed = events
    assert created["data"] == as_placed  # the object a GET returned at that moment
    assert debit["data"] == next(p for p in payments if p["kind"] == "order")
    assert low["data"] == {"balance": "10.00", "currency": "USD", "threshold": "15.00"}
    assert (started["previous_status"], started["data"]["status"]) == ("pending", "in_progress")
    assert (quarter["data"]["progress"], full["data"]["progress"]) == (25, 100)
    assert (completed["previous_status"], completed["data"]["status"]) == ("in_progress", "completed")
    assert completed["data"]["cancelable"] is False
    for event in events:
        assert event["timestamp"].endswith("Z")

    listed = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=key(customer))).json()
    assert [d["event_type"] for d in reversed(listed["data"])] == expected
    assert {(d["status"], d["attempts"], d["response_status"]) for d in listed["data"]} == {("succeeded", 1, 200)}


async def test_a_500_is_retried_with_the_same_id_until_a_200(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="10.00")
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
    receiver.statuses = [500, 503]
    placed = await place(client, customer, unique_email("to"))
    await deliver(lambda: len(receiver.received) >= 3)
    assert [r.event["data"]["id"] for r in receiver.received] == [placed["id"]] * 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for attempt in receiver.received:  # each attempt signed afresh, verifiable
        attempt.verified_with(endpoint["secret"])
    (delivery,) = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=key(customer))
    ).json()["data"]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == ("succeeded", 3, 200)
    detail = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}", headers=key(customer))
    ).json()
    assert [a["response_status"] for a in detail["attempt_log"]] == [500, 503, 200]
    assert detail["attempt_log"][0]["error"] == "HTTP 500"
    assert len(detail["attempt_log"][0]["response_body"].encode()) <= 1024  # the first 1 KB only
    assert detail["attempt_log"][0]["response_body"].startswith("receiver says no")


async def test_a_receiver_down_for_a_while_gets_everything_in_order_when_it_returns(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="20.00")
    port = free_port()
    down = Receiver(port)
    endpoint = await create_endpoint(client, customer, down.url, event_types=["order.created"])
    placed = [await place(client, customer, unique_email("to")) for _ in range(5)]
    await deliver(rounds=10)  # connection refused, every time: retried later, nothing skipped
    async with sessionmaker() as session:
        failing = await session.scalar(
            sa.text("SELECT failing_since IS NOT NULL FROM webhook_endpoints WHERE public_id = :p"),
            {"p": endpoint["id"]},
        )
    assert failing
    down.start()
    try:
        await deliver(lambda: len(down.received) >= 5, rounds=200)
    finally:
        down.stop()
    assert [r.verified_with(endpoint["secret"])["data"]["id"] for r in down.received] == [p["id"] for p in placed]
    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=key(customer))).json()
    assert shown["failing_since"] is None  # healthy again


async def test_a_killed_sender_loses_nothing(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
) -> None:
    """`ordersvc webhooks` is killed (SIGKILL) while a delivery is in flight; a second one takes
    over when the first one's lease runs out (moved here to now, instead of waiting a minute)
    and every event arrives, some twice: the receiver deduplicates by `webhook-id`."""
    customer = await make_customer(balance="30.00")
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
    placed = [await place(client, customer, unique_email("to")) for _ in range(8)]
    receiver.delay = 0.4
    env = {**os.environ, "ORDERSVC_WEBHOOKS_ALLOW_LOOPBACK": "true", "ORDERSVC_WEBHOOKS_INTERVAL_SECONDS": "0.1"}
    first = subprocess.Popen([ORDERSVC, "webhooks"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    got = len(receiver.received)
    assert 3 <= got < 8
    row = await endpoint_row_id(sessionmaker, endpoint["id"])
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("UPDATE webhook_endpoints SET lease_until = now() WHERE id = :id"), {"id": row})
    second = subprocess.Popen([ORDERSVC, "webhooks"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            unique = {r.headers["webhook-id"] for r in receiver.received}
            if len(unique) >= 8:
                break
            await asyncio.sleep(0.1)
    finally:
        second.terminate()
        second.wait(timeout=20)
    seen: dict[str, str] = {}
    for attempt in receiver.received:
        event = attempt.verified_with(endpoint["secret"])
        seen.setdefault(attempt.headers["webhook-id"], event["data"]["id"])
    assert list(seen.values()) == [p["id"] for p in placed]  # each once after dedup, in order
    assert len(receiver.received) <= 9  # at most the one in flight at the kill came twice


def _sender_children(serve_pid: int) -> list[Any]:
    import psutil

    return [
        child
        for child in psutil.Process(serve_pid).children(recursive=True)
        if "webhooks" in child.cmdline() and "--beside-serve" in child.cmdline()
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_sends_from_a_process_of_its_own_at_a_lower_priority(
    make_customer: MakeCustomer, receiver: Receiver, tmp_path: Any, workers: str
) -> None:
    """`serve` (one worker or two) runs the sender as one niced child process: a delivery arrives, the
    child runs at niceness 10, is started again if it dies, and goes when `serve` is killed."""
    import psutil

    from ordersvc.ops.background import NICENESS
    from tests.support import serve

    customer = await make_customer(balance="10.00")
    env = {
        **os.environ,
        "ORDERSVC_WEBHOOKS_IN_SERVE": "true",
        "ORDERSVC_WEBHOOKS_ALLOW_LOOPBACK": "true",
        "ORDERSVC_WEBHOOKS_INTERVAL_SECONDS": "0.2",
    }
    with serve(tmp_path, env=env, extra=("--workers", workers)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
            placed = await place(client, customer, unique_email("to"))
            deadline = time.monotonic() + 30
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        assert receiver.received
        assert receiver.received[0].event["data"]["id"] == placed["id"]
        (child,) = _sender_children(server.process.pid)
        assert child.nice() == NICENESS
        child.kill()  # it dies: serve starts another
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            again = _sender_children(server.process.pid)
            if again and again[0].pid != child.pid:
                break
            await asyncio.sleep(0.2)
        (replacement,) = _sender_children(server.process.pid)
        assert replacement.pid != child.pid
        others = [p for p in psutil.Process(server.process.pid).children(recursive=True) if p.pid != replacement.pid]
        server.process.send_signal(signal.SIGKILL)  # serve dies without cleaning up
        server.process.wait(timeout=10)
        try:
            gone = psutil.wait_procs([replacement], timeout=15)[0]
            assert [p.pid for p in gone] == [replacement.pid]
        finally:  # uvicorn's own workers outlive a killed supervisor: not this test's subject
            for process in others:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
