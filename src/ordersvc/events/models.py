"""What happened to a customer's orders and money, one row per event: written by the database in
the transaction of the change (triggers on `order_events` and `orders.progress`, and the ledger's
`ordersvc_post_payments`), read by the webhook sender and the live stream (`events.service`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class EventType(StrEnum):
    ORDER_CREATED = "order.created"
    ORDER_STATUS_CHANGED = "order.status_changed"
    ORDER_PROGRESS = "order.progress"  # at most one per order per PROGRESS_INTERVAL, and the last
    PAYMENT_CREATED = "payment.created"
    BALANCE_LOW = "balance.low"  # the balance went below the account's alert threshold


# How often an order's progress is told at most (the final progress always is):
# `events/sql/ordersvc_emit_order_progress.sql` holds the same interval.
PROGRESS_INTERVAL_SECONDS = 10

_TYPES = ", ".join(f"'{t.value}'" for t in EventType)


class Event(SQLModel, table=True):
    """One event. No foreign keys: a key check per row would cost the order path a look-up per
    event, and events outlive nothing they name (they are pruned first, `RETENTION_DAYS`).

    The object an event carries is rendered when it is read, by the same code as a `GET`: the rows
    it names change only in what the event records (an order's status and progress), and a
    payment never changes."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_account_id_id", "account_id", "id"),
        sa.CheckConstraint(f"type IN ({_TYPES})", name="event_type_is_known"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    order_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    # The order as the event saw it (its other fields never change).
    order_status: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    order_previous_status: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    order_progress: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    payment_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    # balance.low: the balance after the payments that crossed the threshold, and the threshold.
    balance_mills: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    threshold_mills: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class BalanceAlert(SQLModel, table=True):
    """An account's low-balance threshold: `balance.low` when a balance move crosses below it."""

    __tablename__ = "balance_alerts"
    __table_args__ = (sa.CheckConstraint("threshold_mills > 0", name="threshold_positive"),)

    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    )
    threshold_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=utc_column())


class OrderProgressMark(SQLModel, table=True):
    """The last progress told for an order still open: the throttle of `order.progress`."""

    __tablename__ = "order_progress_marks"

    order_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    progress: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    told_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
