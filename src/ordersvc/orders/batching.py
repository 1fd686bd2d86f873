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
MIN_LOCK_WAIT_SECONDS = 0.05  # an order with less time left than this is not sent

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
    deadline: float | None  # its request's time limit, on the event loop's clock (None: none)


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
        # Weak: the batchers are kept in a WeakKeyDictionary keyed by the engine, whose entry a
        # strong reference from its value would keep alive for ever.
        self._engine = weakref.ref(engine)
        self._waiting: list[tuple[KeyedOrder, asyncio.Future[KeyedPlacement]]] = []
        self._senders = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(self, order: KeyedOrder) -> KeyedPlacement:
        future: asyncio.Future[KeyedPlacement] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, future))
        if self._senders < MAX_IN_FLIGHT:
            # Counted here and uncounted by the sender in the same step in which it finds nothing
            # left to send: an order queued at any moment always has a sender that will take it.
            self._senders += 1
            task = asyncio.create_task(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._send_batch(batch)
        finally:
            self._senders -= 1

    async def _send_batch(self, batch: list[tuple[KeyedOrder, asyncio.Future[KeyedPlacement]]]) -> None:
        now = asyncio.get_running_loop().time()
        # An order whose request has (almost) no time left is not sent: told "timed out", it
        # must not be placed.
        late = [(o, f) for o, f in batch if o.deadline is not None and o.deadline - now < MIN_LOCK_WAIT_SECONDS]
        for _, future in late:
            if not future.done():
                future.set_exception(db.LockWaitTimedOut())
        batch = [(o, f) for o, f in batch if not f.done()]
        if not batch:
            return
        try:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the engine of this batcher is gone")
            rows = await db.fetch_autocommit(engine, _PLACE_BATCH, *_arguments([o for o, _ in batch], now))
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for idx, outcome, account_id, order_id, status, created_at in rows:
            order, future = batch[idx - 1]
            if not future.done():
                future.set_result(KeyedPlacement(outcome, order.public_id, account_id, order_id, status, created_at))
        for _, future in batch:  # one row per order, always; never leave a request waiting
            if not future.done():
                future.set_exception(RuntimeError("the batch statement returned no row for an order"))


def _arguments(orders: list[KeyedOrder], now: float) -> tuple[object, ...]:
    deadlines = [o.deadline for o in orders if o.deadline is not None]
    # The statement waits for a lock no longer than its most hurried order has left.
    lock_timeout_ms = max(1, int((min(deadlines) - now) * 1000)) if deadlines else None
    return (
        [o.prefix for o in orders],
        [o.key_hash for o in orders],
        [o.public_id for o in orders],
        [o.email for o in orders],
        [o.quantity for o in orders],
        [o.price_mills for o in orders],
        lock_timeout_ms,
    )


_batchers: weakref.WeakKeyDictionary[AsyncEngine, OrderBatcher] = weakref.WeakKeyDictionary()


def batcher_for(engine: AsyncEngine) -> OrderBatcher:
    batcher = _batchers.get(engine)
    if batcher is None:
        batcher = _batchers[engine] = OrderBatcher(engine)
    return batcher
