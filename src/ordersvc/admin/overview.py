"""The console's overview, at a cost that does not grow with the ledger.

Money per day comes from `daily_totals`: a day's sums per payment kind (and its orders ended per
status) are computed once, the first time the overview is read after the day closed, and kept; a
day counts as closed an hour after it ended (no transaction writing into it can still be open then).
Only the hours not closed yet are summed live, through BRIN indexes on `payments.created_at` and
`order_events.created_at` (payments and events are insert-only, written in time order, so a range
of time is a range of table blocks). Orders by status: the open ones are counted where they are
(few, and each open status has an index), the ended ones from the kept totals (an order ends once).

The first overviews of an old ledger sum its history a bounded share at a time: the 30 days shown
at once, then older days, oldest first, for at most `BACKFILL_BUDGET` per read (`history_complete`
says when the ended orders by status count every day). However long the history, no read runs into
the statement timeout, and each one keeps what it summed.

Nothing here is on the order path: the totals are written by readers of the overview, never by the
statements that write payments and orders."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from ordersvc.accounts.models import Account
from ordersvc.ledger.models import Payment
from ordersvc.orders.lifecycle import ENDINGS
from ordersvc.orders.models import Order, OrderEvent, OrderStatus
from ordersvc.outbox.models import OutboxMessage
from ordersvc.timestamps import utc_now

CLOSED_AFTER = timedelta(hours=1)  # a day is summed for good this long after it ended
BACKFILL_BUDGET = 1.0  # seconds of one read spent summing days older than those shown
BACKFILL_CHUNK_DAYS = 31  # days summed by one statement
PAYMENT = "payment"  # metric: payments of a kind (key) that day
ORDER_END = "order_end"  # metric: orders that ended in a status (key) that day
OPEN_STATUSES = tuple(s for s in OrderStatus if s not in ENDINGS)


class DailyTotal(SQLModel, table=True):
    __tablename__ = "daily_totals"

    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    metric: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    amount_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class DayClosed(SQLModel, table=True):
    """The days whose totals are kept (a day with no payment has no total, but is closed too)."""

    __tablename__ = "daily_totals_closed"

    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))


@dataclass(frozen=True, slots=True)
class Totals:
    amounts: dict[str, int]  # payment kind -> sum, in mills
    counts: dict[str, int]  # payment kind -> how many
    ended: dict[str, int]  # order status -> orders that ended in it


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def _sum_range(session: AsyncSession, since: datetime, until: datetime | None) -> dict[date, Totals]:
    """Payments per day and kind, and order endings per day and status, in [since, until)."""
    found: dict[date, Totals] = {}

    def of(day: date) -> Totals:
        return found.setdefault(day, Totals({}, {}, {}))

    p_day = sa.func.date(sa.func.timezone("UTC", col(Payment.created_at))).label("day")
    where = [col(Payment.created_at) >= since]
    if until is not None:
        where.append(col(Payment.created_at) < until)
    payments = await session.execute(
        sa.select(p_day, col(Payment.kind), sa.func.sum(col(Payment.amount_mills)), sa.func.count())
        .where(*where)
        .group_by(p_day, col(Payment.kind))
    )
    for day, kind, amount, count in payments:
        of(day).amounts[kind] = int(amount)
        of(day).counts[kind] = int(count)
    e_day = sa.func.date(sa.func.timezone("UTC", col(OrderEvent.created_at))).label("day")
    e_where = [col(OrderEvent.created_at) >= since, col(OrderEvent.to_status).in_([s.value for s in ENDINGS])]
    if until is not None:
        e_where.append(col(OrderEvent.created_at) < until)
    events = await session.execute(
        sa.select(e_day, col(OrderEvent.to_status), sa.func.count())
        .where(*e_where)
        .group_by(e_day, col(OrderEvent.to_status))
    )
    for day, status, count in events:
        of(day).ended[status] = int(count)
    return found


async def _close_days(session: AsyncSession, first: date, last: date, *, budget: float | None = None) -> bool:
    """Keep the totals of the days in [first, last] not kept yet (each summed once), oldest first,
    `BACKFILL_CHUNK_DAYS` per statement; with a `budget` (seconds), no new statement once it is
    spent (but one at least: every read makes progress). Whether every day of the range is kept now."""
    kept = set(
        (
            await session.execute(
                sa.select(col(DayClosed.day)).where(col(DayClosed.day) >= first, col(DayClosed.day) <= last)
            )
        ).scalars()
    )
    missing = [
        first + timedelta(days=i) for i in range((last - first).days + 1) if first + timedelta(days=i) not in kept
    ]
    started = time.monotonic()
    for at in range(0, len(missing), BACKFILL_CHUNK_DAYS):
        if budget is not None and at > 0 and time.monotonic() - started > budget:  # one chunk at least
            return False
        await _keep(session, missing[at : at + BACKFILL_CHUNK_DAYS])
    return True


async def _keep(session: AsyncSession, days: list[date]) -> None:
    """Sum `days` (in order) in one pass over their range and keep their totals."""
    summed = await _sum_range(session, _start(days[0]), _start(days[-1] + timedelta(days=1)))
    rows = []
    for day in days:
        totals = summed.get(day)
        if totals is None:
            continue
        rows += [
            {"day": day, "metric": PAYMENT, "key": k, "amount_mills": v, "count": totals.counts[k]}
            for k, v in totals.amounts.items()
        ]
        rows += [
            {"day": day, "metric": ORDER_END, "key": k, "amount_mills": 0, "count": v} for k, v in totals.ended.items()
        ]
    if rows:
        await session.execute(pg_insert(DailyTotal).values(rows).on_conflict_do_nothing())
    await session.execute(pg_insert(DayClosed).values([{"day": d} for d in days]).on_conflict_do_nothing())


@dataclass(frozen=True, slots=True)
class Overview:
    balances_held_mills: int  # the sum of every balance: what the service owes its customers
    days: list[tuple[date, Totals]]  # oldest first
    orders_by_status: dict[str, int]
    outbox_waiting: int
    outbox_oldest: datetime | None
    live_workers: int
    history_complete: bool  # False: older days are still being summed (the ended orders count fewer)


async def overview(session: AsyncSession, *, days: int = 30) -> Overview:
    now = utc_now()
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    last_closed = (now - CLOSED_AFTER).date() - timedelta(days=1)
    # Every day since the first ending or payment is needed for the ended orders' totals: the days
    # shown at once, the older ones within the read's budget (the first overviews of an old ledger).
    # The first payment by id (the primary key: no scan), which is the earliest (written in time order).
    earliest = (
        await session.execute(sa.select(col(Payment.created_at)).order_by(col(Payment.id)).limit(1))
    ).scalar_one_or_none()
    first_kept = min(first_day, earliest.astimezone(UTC).date()) if earliest is not None else first_day
    complete = True
    if last_closed >= first_day:
        await _close_days(session, first_day, last_closed)
    if first_kept < first_day:
        complete = await _close_days(session, first_kept, first_day - timedelta(days=1), budget=BACKFILL_BUDGET)
    live = await _sum_range(session, _start(last_closed + timedelta(days=1)), None)
    kept = (
        await session.execute(
            sa.select(DailyTotal).where(col(DailyTotal.day) >= first_day, col(DailyTotal.metric) == PAYMENT)
        )
    ).scalars()
    by_day: dict[date, Totals] = {first_day + timedelta(days=i): Totals({}, {}, {}) for i in range(days)}
    for row in kept:
        if row.day in by_day and row.day <= last_closed:
            by_day[row.day].amounts[row.key] = row.amount_mills
            by_day[row.day].counts[row.key] = row.count
    for day, totals in live.items():
        if day in by_day:
            by_day[day] = totals
    ended = dict(
        (
            await session.execute(
                sa.select(col(DailyTotal.key), sa.func.sum(col(DailyTotal.count)))
                .where(col(DailyTotal.metric) == ORDER_END, col(DailyTotal.day) <= last_closed)
                .group_by(col(DailyTotal.key))
            )
        ).all()
    )
    statuses = {s.value: int(ended.get(s.value, 0)) for s in ENDINGS}
    for totals in live.values():
        for status, count in totals.ended.items():
            statuses[status] = statuses.get(status, 0) + count
    # The open orders, counted where they are, and the workers leasing them: one pass over them.
    in_progress = col(Order.status) == OrderStatus.IN_PROGRESS.value
    open_counts = (
        await session.execute(
            sa.select(
                *(sa.func.count().filter(col(Order.status) == s.value) for s in OPEN_STATUSES),
                sa.func.count(sa.distinct(col(Order.worker_id))).filter(in_progress, col(Order.lease_until) > now),
            ).where(col(Order.status).in_([s.value for s in OPEN_STATUSES]))
        )
    ).one()
    for status, count in zip(OPEN_STATUSES, open_counts, strict=False):
        statuses[status.value] = int(count)
    workers = open_counts[len(OPEN_STATUSES)]
    held = (await session.execute(sa.select(sa.func.coalesce(sa.func.sum(col(Account.balance_mills)), 0)))).scalar_one()
    waiting = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(col(OutboxMessage.created_at))).where(
                col(OutboxMessage.status) == "pending"
            )
        )
    ).one()
    return Overview(
        balances_held_mills=int(held),
        days=sorted(by_day.items()),
        orders_by_status=statuses,
        outbox_waiting=int(waiting[0]),
        outbox_oldest=waiting[1],
        live_workers=int(workers),
        history_complete=complete,
    )
