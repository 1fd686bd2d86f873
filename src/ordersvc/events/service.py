"""Events: read as the database wrote them (`events.models`), rendered as the API renders their
objects, and followed as they commit (`Tail`), for the webhook dispatch and the live stream."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.events.models import BalanceAlert, EventType
from ordersvc.ledger import repository as ledger_repository
from ordersvc.ledger.schemas import BalanceOut, PaymentOut
from ordersvc.money import InvalidAmount, format_usd, parse_usd
from ordersvc.orders import repository as orders_repository
from ordersvc.orders.schemas import OrderOut, OrderStatus
from ordersvc.orders.service import NewOrder
from ordersvc.timestamps import utc_now

# Events are kept this long (and their deliveries with them): the live stream resumes from any of
# them, and a delivery is retried for less (`webhooks.service.RETRY_PERIOD`).
RETENTION_DAYS = 30
# An event id not yet committed when later ones were read is looked for again for this long;
# after it, it is taken for a rolled back transaction's (no transaction of this service that
# writes events stays open this long: requests and workers run under statement timeouts).
GAP_PERIOD = timedelta(minutes=5)
MAX_GAP = 10_000

_PUBLIC_ID = re.compile(r"^evt_([1-9][0-9]{0,17})$")
_COLUMNS = (
    "id",
    "account_id",
    "type",
    "order_id",
    "order_status",
    "order_previous_status",
    "order_progress",
    "payment_id",
    "balance_mills",
    "threshold_mills",
    "created_at",
)
_SELECT = "SELECT " + ", ".join(f"e.{c}" for c in _COLUMNS) + " FROM events e"  # noqa: S608 (constant)


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    account_id: int
    type: str
    order_id: int | None
    order_status: str | None
    order_previous_status: str | None
    order_progress: int | None
    payment_id: int | None
    balance_mills: int | None
    threshold_mills: int | None
    created_at: datetime


def public_id(event_id: int) -> str:
    return f"evt_{event_id}"


def parse_public_id(value: str) -> int | None:
    """The event id of `evt_<n>`, or None for anything else."""
    match = _PUBLIC_ID.match(value.strip())
    return int(match.group(1)) if match else None


def _rows(result: sa.Result[Any]) -> list[EventRow]:
    return [EventRow(*row) for row in result]  # type: ignore[call-arg]


async def committed_after(session: AsyncSession, *, after: int, gaps: list[int], limit: int) -> list[EventRow]:
    """Every account's events after id `after` (at most `limit`), and those among `gaps` that
    have committed since, in id order."""
    result = await session.execute(
        sa.text(
            f"SELECT * FROM ({_SELECT} WHERE e.id > :after ORDER BY e.id LIMIT :limit) n"  # noqa: S608 (constant)
            f" UNION ALL {_SELECT} WHERE e.id = ANY(CAST(:gaps AS bigint[])) ORDER BY 1"
        ),
        {"after": after, "gaps": gaps, "limit": limit},
    )
    return _rows(result)


async def get_event(session: AsyncSession, event_id: int) -> EventRow | None:
    rows = _rows(await session.execute(sa.text(f"{_SELECT} WHERE e.id = :id"), {"id": event_id}))
    return rows[0] if rows else None


async def get_events(session: AsyncSession, event_ids: list[int]) -> list[EventRow]:
    """Those of the events that still exist, in id order."""
    if not event_ids:
        return []
    return _rows(
        await session.execute(
            sa.text(f"{_SELECT} WHERE e.id = ANY(CAST(:ids AS bigint[])) ORDER BY e.id"), {"ids": event_ids}
        )
    )


async def last_id(session: AsyncSession) -> int:
    return int((await session.execute(sa.text("SELECT coalesce(max(id), 0) FROM events"))).scalar_one())


async def account_events_after(
    session: AsyncSession, *, account_id: int, after: int, since: datetime, limit: int
) -> list[EventRow]:
    """An account's events after id `after` and no older than `since`, oldest first."""
    result = await session.execute(
        sa.text(
            f"{_SELECT} WHERE e.account_id = :account AND e.id > :after AND e.created_at >= :since"
            " ORDER BY e.account_id, e.id LIMIT :limit"
        ),
        {"account": account_id, "after": after, "since": since, "limit": limit},
    )
    return _rows(result)


async def render(session: AsyncSession, events: list[EventRow]) -> dict[int, dict[str, Any]]:
    """Each event as it is sent, by id: `{"id", "type", "timestamp", "data"}` (and for a status
    change `previous_status`), `data` being the object as the REST API renders it, as it stood:
    an order with the status and progress the event recorded (the rest of an order never
    changes), a payment (never changes), the balance (`balance.low`, with the threshold)."""
    orders = await orders_repository.orders_by_ids(session, sorted({e.order_id for e in events if e.order_id}))
    payments = await ledger_repository.entries_by_ids(session, sorted({e.payment_id for e in events if e.payment_id}))
    rendered: dict[int, dict[str, Any]] = {}
    for event in events:
        body: dict[str, Any] = {"id": public_id(event.id), "type": event.type, "timestamp": _instant(event.created_at)}
        if event.order_id is not None:
            order = orders.get(event.order_id)
            if order is None or order.id is None or order.created_at is None:
                continue
            as_then = NewOrder(
                id=order.id,
                public_id=order.public_id,
                account_id=order.account_id,
                email=order.email,
                quantity=order.quantity,
                price_mills=order.price_mills,
                status=event.order_status or order.status,
                progress=order.progress if event.order_progress is None else event.order_progress,
                created_at=order.created_at,
            )
            body["data"] = OrderOut.of(as_then).model_dump(mode="json")
            if event.type == EventType.ORDER_STATUS_CHANGED and event.order_previous_status:
                body["previous_status"] = OrderStatus.of(event.order_previous_status).value
        elif event.payment_id is not None:
            entry = payments.get(event.payment_id)
            if entry is None:
                continue
            body["data"] = PaymentOut.of(entry).model_dump(mode="json")
        else:
            assert event.balance_mills is not None
            data = BalanceOut(balance=format_usd(event.balance_mills)).model_dump(mode="json")
            data["threshold"] = format_usd(event.threshold_mills or 0)
            body["data"] = data
        rendered[event.id] = body
    return rendered


def dumps(body: dict[str, Any]) -> str:
    """An event's JSON as it is sent (compact, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Tail:
    """Where a reader of every account's events stands: all read up to `after`, except the
    `gaps` (id -> when first missed): ids drawn by transactions that had not committed when later
    ids were read. Ids are drawn in order but commit in any order, so a reader that only went
    forward would skip the later committer; one that waited for it would wait for a rolled back
    transaction forever."""

    after: int = 0
    gaps: dict[int, datetime] = field(default_factory=dict)

    async def read(self, session: AsyncSession, *, limit: int = 1000) -> list[EventRow]:
        """The events committed since the last read, in id order; moves the tail past them."""
        events = await committed_after(session, after=self.after, gaps=sorted(self.gaps), limit=limit)
        self.advance([e.id for e in events])
        return events

    def advance(self, ids: list[int], now: datetime | None = None) -> None:
        now = now or utc_now()
        for event_id in ids:
            self.gaps.pop(event_id, None)
        newer = sorted(i for i in ids if i > self.after)
        for event_id in newer:
            # Beyond MAX_GAP ids at once (a sequence that jumped after a crash): only the last ones.
            for missing in range(max(self.after + 1, event_id - MAX_GAP), event_id):
                self.gaps.setdefault(missing, now)
            self.after = event_id
        for missing, seen in list(self.gaps.items()):
            if now - seen > GAP_PERIOD:
                del self.gaps[missing]


async def balance_alert(session: AsyncSession, *, account_id: int) -> int | None:
    """The account's low-balance threshold (mills), or None."""
    alert = await session.get(BalanceAlert, account_id)
    return alert.threshold_mills if alert else None


async def set_balance_alert(session: AsyncSession, *, account_id: int, threshold_mills: int | None) -> int | None:
    """Set (or, with None, remove) the threshold: `balance.low` when a balance move takes the
    balance from at or above it to below it, once per crossing."""
    if threshold_mills is None:
        await session.execute(sa.delete(BalanceAlert).where(col(BalanceAlert.account_id) == account_id))
        return None
    await session.execute(
        pg_insert(BalanceAlert)
        .values(account_id=account_id, threshold_mills=threshold_mills)
        .on_conflict_do_update(
            index_elements=["account_id"],
            set_={"threshold_mills": threshold_mills, "updated_at": sa.func.clock_timestamp()},
        )
    )
    return threshold_mills


class InvalidThreshold(InvalidAmount):
    code = "invalid_threshold"
    message = "The threshold must be a positive USD amount with at most 3 decimals, or null."
    field = "threshold"


def parse_threshold(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_usd(text)
    except InvalidAmount as exc:
        raise InvalidThreshold(str(exc).replace("Invalid amount", "Invalid threshold")) from None
