"""Group commit for the one-statement order: the orders a process is asked for while a batch is
in flight go to the database together in the next one (`ordersvc_place_orders_by_key`,
migration 0011).

A lone order goes at once, in a batch of one: batching adds no wait. Under load, each batch costs
one pooled connection, one round trip and one commit for all of its orders, and a hot account's
row is locked once for all of its orders in the batch. Each order is still decided alone; an
error of the statement itself (the database gone, a lock waited for too long) fails every order
of the batch, and the statement wrote nothing."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersvc import db

MAX_BATCH = 64  # orders per statement
MAX_IN_FLIGHT = 2  # statements at once per process (each holds a pooled connection)

_PLACE_BATCH = (
    "SELECT idx, outcome, account_id, order_id, order_status, created_at"
    " FROM ordersvc_place_orders_by_key($1, $2, $3, $4, $5, $6, $7)"
)


@dataclass(frozen=True, slots=True)
class KeyedOrder:
    """One order asked for: the key (its prefix and SHA-256), and what to place."""

    prefix: str
    key_hash: bytes
    public_id: str
    email: str
    quantity: int
    price_mills: int
    lock_timeout_ms: int | None  # what is left of its request's time (None: no limit)


@dataclass(frozen=True, slots=True)
class KeyedPlacement:
    """What was done for one order: `placed` (with the account, the order's id, status and
    time), or `invalid_key`, `opted_out`, `full_path` (the recipient has not confirmed),
    `insufficient_balance`, `public_id_taken`. Nothing is written for it unless placed."""

    outcome: str
    public_id: str  # the id tried
    account_id: int | None
    order_id: int | None
    status: str | None
    created_at: datetime | None


class OrderBatcher:
    """The batches of one engine (one process's pool), on one event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[KeyedOrder, asyncio.Future[KeyedPlacement]]] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def place(self, order: KeyedOrder) -> KeyedPlacement:
        future: asyncio.Future[KeyedPlacement] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, future))
        if len(self._senders) < MAX_IN_FLIGHT:
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await future

    async def _send(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                rows = await db.fetch_autocommit(self._engine, _PLACE_BATCH, *_arguments([o for o, _ in batch]))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for idx, outcome, account_id, order_id, status, created_at in rows:
                order, future = batch[idx - 1]
                if not future.done():
                    future.set_result(
                        KeyedPlacement(outcome, order.public_id, account_id, order_id, status, created_at)
                    )


def _arguments(orders: list[KeyedOrder]) -> tuple[object, ...]:
    limits = [o.lock_timeout_ms for o in orders if o.lock_timeout_ms is not None]
    return (
        [o.prefix for o in orders],
        [o.key_hash for o in orders],
        [o.public_id for o in orders],
        [o.email for o in orders],
        [o.quantity for o in orders],
        [o.price_mills for o in orders],
        min(limits) if limits else None,  # the batch waits no longer than its most hurried order
    )


_batchers: weakref.WeakKeyDictionary[AsyncEngine, OrderBatcher] = weakref.WeakKeyDictionary()


def batcher_for(engine: AsyncEngine) -> OrderBatcher:
    batcher = _batchers.get(engine)
    if batcher is None:
        batcher = _batchers[engine] = OrderBatcher(engine)
    return batcher
