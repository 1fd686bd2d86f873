"""Live events for signed-in customers (`GET /v1/events/stream`, Server-Sent Events).

Each server process follows the events table itself (`Hub`: one query every POLL_SECONDS, on one
pooled connection, whatever the number of streams), renders each event once, and hands it to the
streams of its account. Every replica reads the same table, so a stream on any replica sees every
event, from whichever replica or worker wrote it. Not LISTEN/NOTIFY: a transaction that notifies
takes a database-wide lock at commit (PostgreSQL's `PreCommit_Notify`), which would serialise the
order path's commits; nor Redis, which would have to be told in the order's transaction.

A stream starts with what the account missed since `Last-Event-ID` (at most RESUME_WINDOW back),
sends a comment every HEARTBEAT_SECONDS, checks the caller's credentials again every
RECHECK_SECONDS (a revoked key or ended session ends the stream), and ends after `max_seconds`
(`ORDERSVC_EVENTS_STREAM_SECONDS`, 5 minutes: the browser reconnects with `Last-Event-ID`, and a
draining server is not held open)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.errors import ServiceError
from ordersvc.events import service as events
from ordersvc.timestamps import utc_now

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 60.0
RESUME_WINDOW = timedelta(hours=1)
RESUME_LIMIT = 1000
RETRY_MS = 3000
MAX_STREAMS = 1000  # per process
MAX_STREAMS_PER_ACCOUNT = 5  # per process
QUEUE_SIZE = 1000  # events waiting for a slow client; beyond, its stream ends (it resumes)


class TooManyStreams(ServiceError):
    status = 429
    code = "too_many_streams"
    message = f"At most {MAX_STREAMS_PER_ACCOUNT} live event streams per account: close one first."
    retry_after = 5


class StreamsBusy(ServiceError):
    status = 503
    code = "streams_busy"
    message = "This server has as many live event streams as it takes: try again shortly."
    retry_after = 5


@dataclass(frozen=True, slots=True)
class Rendered:
    id: int
    type: str
    json: str


@dataclass(eq=False)
class Subscription:
    account_id: int
    queue: asyncio.Queue[Rendered | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


class Hub:
    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._tail: events.Tail | None = None

    def subscribe(self, account_id: int) -> Subscription:
        if self._count >= MAX_STREAMS:
            raise StreamsBusy()
        mine = self._subscriptions.setdefault(account_id, set())
        if len(mine) >= MAX_STREAMS_PER_ACCOUNT:
            raise TooManyStreams()
        subscription = Subscription(account_id)
        mine.add(subscription)
        self._count += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        mine = self._subscriptions.get(subscription.account_id)
        if mine is not None and subscription in mine:
            mine.discard(subscription)
            self._count -= 1
            if not mine:
                del self._subscriptions[subscription.account_id]

    async def close(self) -> None:
        for mine in self._subscriptions.values():
            for subscription in mine:
                with contextlib.suppress(asyncio.QueueFull):
                    subscription.queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        """Read what committed, render what subscribers wait for, hand it out; until no one listens."""
        while self._count:
            try:
                async with self._maker() as session:
                    if self._tail is None:
                        self._tail = events.Tail(after=await events.last_id(session))
                    read = await self._tail.read(session)
                    wanted = [e for e in read if e.account_id in self._subscriptions]
                    rendered = await events.render(session, wanted) if wanted else {}
            except Exception:
                logger.exception("following events failed; retrying")
                rendered, wanted = {}, []
            for event in wanted:
                body = rendered.get(event.id)
                if body is None:
                    continue
                item = Rendered(event.id, event.type, events.dumps(body))
                for subscription in list(self._subscriptions.get(event.account_id, ())):
                    try:
                        subscription.queue.put_nowait(item)
                    except asyncio.QueueFull:  # too slow a client: its stream ends, and it resumes
                        self.unsubscribe(subscription)
                        subscription.queue = asyncio.Queue(1)
                        subscription.queue.put_nowait(None)
            await asyncio.sleep(POLL_SECONDS)
        self._tail = None  # a new first subscriber starts at what is new then


def _frame(item: Rendered) -> str:
    return f"id: {events.public_id(item.id)}\nevent: {item.type}\ndata: {item.json}\n\n"


async def stream(
    hub: Hub,
    maker: async_sessionmaker[AsyncSession],
    *,
    account_id: int,
    last_event_id: str | None,
    still_allowed: Callable[[], Awaitable[bool]],
    disconnected: Callable[[], Awaitable[bool]],
    max_seconds: float,
) -> AsyncIterator[str]:
    """The frames of one stream. Subscribed before the backlog is read, so nothing committed in
    between is missed; what both hold is sent once."""
    subscription = hub.subscribe(account_id)
    loop = asyncio.get_running_loop()
    started = checked = loop.time()
    sent: set[int] = set()
    try:
        yield f"retry: {RETRY_MS}\n: stream of account events\n\n"
        after = events.parse_public_id(last_event_id) if last_event_id else None
        if after is not None:
            async with maker() as session:
                missed = await events.account_events_after(
                    session, account_id=account_id, after=after, since=utc_now() - RESUME_WINDOW, limit=RESUME_LIMIT
                )
                rendered = await events.render(session, missed)
            for event in missed:
                if (body := rendered.get(event.id)) is not None:
                    sent.add(event.id)
                    yield _frame(Rendered(event.id, event.type, events.dumps(body)))
        while loop.time() - started < max_seconds:
            try:
                left = max(0.0, started + max_seconds - loop.time())
                item = await asyncio.wait_for(subscription.queue.get(), timeout=min(HEARTBEAT_SECONDS, left))
            except TimeoutError:
                if loop.time() - started >= max_seconds or await disconnected():
                    return
                yield ": heartbeat\n\n"
            else:
                if item is None:
                    return
                if item.id not in sent:
                    yield _frame(item)
            if loop.time() - checked > RECHECK_SECONDS:
                checked = loop.time()
                if not await still_allowed():
                    return
    finally:
        hub.unsubscribe(subscription)
