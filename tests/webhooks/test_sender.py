"""The sender under a customer's bad or slow endpoints: nothing a customer's endpoint does keeps
other customers' deliveries from going (a send that raises is a failed attempt; a delivery whose
event went fails; slow receivers hold a share of the senders, not all), and a lease that ran out
is not given back by the sender that lost it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.webhooks import sender
from ordersvc.webhooks import service as webhooks
from tests.conftest import MakeCustomer
from tests.support import Customer
from tests.webhooks.conftest import Deliver, Receiver, create_endpoint, sender_settings


def key(customer: Customer) -> dict[str, str]:
    return {"X-API-Key": customer.api_key}


async def credit(sessionmaker: async_sessionmaker[AsyncSession], customer: Customer) -> None:
    """One event for the customer's endpoints (`payment.created`)."""
    async with sessionmaker.begin() as session:
        await ledger.credit(session, email=customer.email, amount_mills=1000)


async def deliveries(client: httpx.AsyncClient, customer: Customer, endpoint_id: str) -> list[dict[str, object]]:
    answer = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=key(customer))
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, object]] = answer.json()["data"]
    return listed


async def test_a_send_that_raises_is_a_failed_attempt_retried_later(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    deliver: Deliver,
) -> None:
    customer = await make_customer()
    endpoint = await create_endpoint(client, customer, "https://broken.test/hook", event_types=["payment.created"])
    await credit(sessionmaker, customer)

    async def resolver(host: str, port: int) -> list[str]:
        raise RuntimeError("a look-up that breaks in a way nobody planned for")

    await deliver(rounds=2, resolver=resolver, settings=sender_settings(webhooks_retry_base_seconds=3600))
    (delivery,) = await deliveries(client, customer, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # once, then backed off an hour
    assert delivery["error"] == "could not be sent (RuntimeError)"
    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=key(customer))).json()
    assert shown["failing_since"] is not None


async def test_a_resend_whose_event_went_fails_and_the_queue_goes_on(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    customer = await make_customer()
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["payment.created"])
    await credit(sessionmaker, customer)
    await deliver(lambda: len(receiver.received) >= 1)
    (first,) = await deliveries(client, customer, endpoint["id"])
    resent = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{first['id']}/resend", headers=key(customer)
    )
    assert resent.status_code == 201
    # Resending the same delivery again while its resend waits: refused (one at a time).
    twice = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{first['id']}/resend", headers=key(customer)
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "webhook_delivery_pending")
    async with sessionmaker.begin() as session:  # what the prune does to an event 30 days old
        await session.execute(sa.text("DELETE FROM events WHERE id = :id"), {"id": int(str(first["event_id"])[4:])})
    await credit(sessionmaker, customer)  # a later event, behind the resend in the queue
    await deliver(lambda: len(receiver.received) >= 2)
    assert len(receiver.received) == 2
    assert receiver.received[1].event["id"] != receiver.received[0].event["id"]
    async with sessionmaker() as session:
        resend_row = (
            await session.execute(
                sa.text("SELECT status, error FROM webhook_deliveries WHERE id = :id"), {"id": int(resent.json()["id"])}
            )
        ).one()
    assert tuple(resend_row) == ("failed", webhooks.EVENT_GONE)
    async with sessionmaker.begin() as session:
        await webhooks.prune(session)
    async with sessionmaker() as session:
        left = await session.scalar(
            sa.text("SELECT count(*) FROM webhook_deliveries WHERE id = :id"), {"id": int(resent.json()["id"])}
        )
    assert left == 0  # went with its event


async def endpoint_ids(sessionmaker: async_sessionmaker[AsyncSession], public_ids: list[str]) -> list[int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT id FROM webhook_endpoints WHERE public_id = ANY(:p) ORDER BY id"), {"p": public_ids}
        )
        return [r[0] for r in rows]


async def test_claims_take_a_share_per_account_and_the_least_recently_served_first(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
) -> None:
    busy, other = await make_customer(), await make_customer()
    many = [(await create_endpoint(client, busy, f"https://example.com/{n}"))["id"] for n in range(6)]
    one = (await create_endpoint(client, other, "https://example.org/1"))["id"]
    await credit(sessionmaker, busy)
    await credit(sessionmaker, other)
    async with sessionmaker.begin() as session:
        await webhooks.dispatch(session)
    busy_ids, (other_id,) = await endpoint_ids(sessionmaker, many), await endpoint_ids(sessionmaker, [one])

    async with sessionmaker.begin() as session:
        leases = await webhooks.claim_endpoints(session, limit=16)
    claimed = {lease.endpoint_id for lease in leases}
    assert other_id in claimed
    assert len(claimed & set(busy_ids)) == webhooks.PER_ACCOUNT  # 4 of the 6, the rest wait
    async with sessionmaker.begin() as session:
        assert await webhooks.claim_endpoints(session, limit=16) == []  # the busy account's share is taken

    # Given back: the two never served go before the four just served.
    async with sessionmaker.begin() as session:
        for lease in leases:
            await webhooks.release(session, lease=lease)
    async with sessionmaker.begin() as session:
        first_two = await webhooks.claim_endpoints(session, limit=2)
    assert {lease.endpoint_id for lease in first_two} == set(busy_ids) - claimed


async def test_a_lease_that_ran_out_is_not_given_back_by_the_sender_that_lost_it(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
) -> None:
    customer = await make_customer()
    await create_endpoint(client, customer, "https://example.com/lease")
    await credit(sessionmaker, customer)
    async with sessionmaker.begin() as session:
        await webhooks.dispatch(session)
        (lost,) = await webhooks.claim_endpoints(session, limit=16)
    async with sessionmaker.begin() as session:  # it ran out (a minute went by) ...
        await session.execute(
            sa.text("UPDATE webhook_endpoints SET lease_until = now() - interval '1 second' WHERE id = :id"),
            {"id": lost.endpoint_id},
        )
    async with sessionmaker.begin() as session:  # ... and another sender took the endpoint
        (taken,) = await webhooks.claim_endpoints(session, limit=16)
    assert taken.endpoint_id == lost.endpoint_id
    async with sessionmaker.begin() as session:
        await webhooks.release(session, lease=lost)
    async with sessionmaker() as session:
        held = await session.scalar(
            sa.text("SELECT lease_until FROM webhook_endpoints WHERE id = :id"), {"id": lost.endpoint_id}
        )
    assert held == taken.until


async def test_slow_receivers_of_one_account_do_not_hold_up_another(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
) -> None:
    """`run` keeps its slots filled: one account's endpoints, each answering after 3 seconds,
    take at most their share, and another account's event arrives while they are in flight."""
    slow_receiver = Receiver(0, delay=3.0)
    slow_receiver.start()
    assert slow_receiver.server is not None
    slow_receiver.port = slow_receiver.server.server_address[1]
    try:
        slow, fast = await make_customer(), await make_customer()
        for n in range(8):
            await create_endpoint(client, slow, f"{slow_receiver.url}/{n}", event_types=["payment.created"])
        await create_endpoint(client, fast, receiver.url, event_types=["payment.created"])
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run(sessionmaker, sender_settings(webhooks_interval_seconds=0.1), stop))
        try:
            await credit(sessionmaker, slow)
            deadline = time.monotonic() + 20
            while len(slow_receiver.received) < webhooks.PER_ACCOUNT and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(slow_receiver.received) == webhooks.PER_ACCOUNT  # its share, all in flight
            began = time.monotonic()
            await credit(sessionmaker, fast)
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert receiver.received, "the other account's event did not arrive"
            assert time.monotonic() - began < 2.5  # before any slow receiver has answered
            while len(slow_receiver.received) < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(slow_receiver.received) == 8  # the rest of its endpoints, as slots free up
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=30)
    finally:
        slow_receiver.stop()


def test_the_lease_outlasts_an_endpoints_turn() -> None:
    turn = sender.ENDPOINT_ROUND_SECONDS + sender.TIMEOUT_SECONDS  # the last send may begin just before the end
    assert timedelta(seconds=turn) < webhooks.LEASE


async def test_an_endpoint_a_race_left_without_due_at_is_found_again(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    """`due_at` is what senders look up; a queue whose endpoint lost it (the narrow race that
    `wake_forgotten` is for) waits until the sweep, then goes."""
    customer = await make_customer()
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["payment.created"])
    (row,) = await endpoint_ids(sessionmaker, [endpoint["id"]])
    await credit(sessionmaker, customer)
    async with sessionmaker.begin() as session:
        await webhooks.dispatch(session)
        await session.execute(sa.text("UPDATE webhook_endpoints SET due_at = NULL WHERE id = :id"), {"id": row})
    await deliver(rounds=3)
    assert receiver.received == []  # not looked up
    async with sessionmaker.begin() as session:
        assert await webhooks.wake_forgotten(session) == 1
    await deliver(lambda: len(receiver.received) >= 1)
    assert len(receiver.received) == 1
    async with sessionmaker() as session:  # given back with nothing queued: nothing due
        assert await session.scalar(sa.text("SELECT due_at FROM webhook_endpoints WHERE id = :id"), {"id": row}) is None


async def test_an_endpoint_disabled_during_its_turn_gets_nothing_more(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    """A turn reads 50 deliveries at a time; a PATCH that disables the endpoint (or moves it) ends
    the turn after the delivery in flight."""
    customer = await make_customer()
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["payment.created"])
    for _ in range(6):
        await credit(sessionmaker, customer)
    receiver.delay = 0.5
    sending = asyncio.create_task(deliver(rounds=1))
    deadline = time.monotonic() + 20
    while not receiver.received and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    patched = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=key(customer)
    )
    assert patched.status_code == 200
    await sending
    assert 1 <= len(receiver.received) <= 2  # the one in flight when it was disabled, at most one more
    listed = await deliveries(client, customer, endpoint["id"])
    assert sum(d["status"] == "pending" for d in listed) >= 4
