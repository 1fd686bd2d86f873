from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column

# Public order ids: 8 uppercase hex characters.
PUBLIC_ID_PATTERN = r"^[0-9A-F]{8}$"
MIN_QUANTITY = 500
MAX_QUANTITY = 50_000


class OrderStatus(StrEnum):
    """Statuses as stored and as the legacy API shows them (REST: `schemas.OrderStatus`)."""

    AWAITING_CONFIRMATION = "awaiting confirmation"
    PENDING = "pending"
    IN_PROGRESS = "in progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELED = "canceled"


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_account_id_id", "account_id", "id"),
        # An address's open orders, for opt-outs and declines (migration 0014).
        sa.Index(
            "ix_orders_open",
            sa.func.ordersvc_mailbox_key(sa.literal_column("email")),
            "id",
            postgresql_where=sa.text("status IN ('awaiting confirmation', 'pending', 'in progress')"),
        ),
        # The fulfilment queue: only the orders a worker may take, oldest first (migration 0014).
        sa.Index("ix_orders_queue", "id", postgresql_where=sa.text("status IN ('pending', 'in progress')")),
        # A pair's orders awaiting confirmation (migration 0014).
        sa.Index(
            "ix_orders_waiting",
            "account_id",
            sa.func.ordersvc_mailbox_key(sa.literal_column("email")),
            postgresql_where=sa.text("status = 'awaiting confirmation'"),
        ),
        sa.CheckConstraint(f"quantity BETWEEN {MIN_QUANTITY} AND {MAX_QUANTITY}", name="quantity_in_range"),
        sa.CheckConstraint("price_mills = quantity", name="price_is_quantity_over_1000"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="progress_is_percent"),
        sa.CheckConstraint("public_id ~ '^[0-9A-F]{8}$'", name="public_id_is_8_hex"),
        sa.CheckConstraint("delivered BETWEEN 0 AND quantity", name="delivered_within_quantity"),
        sa.CheckConstraint(
            "status IN ('awaiting confirmation', 'pending', 'in progress', 'completed', 'partial', 'canceled')",
            name="status_is_known",
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    public_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    quantity: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    price_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: str = Field(
        default=OrderStatus.PENDING.value,
        sa_column=sa.Column(sa.Text, nullable=False, server_default=OrderStatus.PENDING.value),
    )
    progress: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    # Units delivered so far (progress is its percentage); refunds are for the rest.
    delivered: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    # Set when the customer cancels an order in progress: its worker stops at its next call.
    cancel_requested_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # The worker holding the order, until `lease_until`; an expired lease returns it to the queue.
    worker_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("workers.id")))
    lease_until: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # When a worker last moved it (claimed it, or reported progress): the console's "stuck" view.
    progress_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class OrderOutcome(StrEnum):
    """What the order statement did with one order (`ordersvc_place_orders`); the database's
    enum type `ordersvc_order_outcome` has the same values (a test compares them)."""

    PLACED = "placed"
    REPLAYED = "replayed"  # its idempotency key placed an order before: that order
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # its idempotency key was used with other parameters
    INVALID_KEY = "invalid_key"  # no such active key (or enabled account)
    OPTED_OUT = "opted_out"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    PUBLIC_ID_TAKEN = "public_id_taken"  # nothing written: try another id


OPEN_STATUSES = (OrderStatus.AWAITING_CONFIRMATION, OrderStatus.PENDING, OrderStatus.IN_PROGRESS)
FINAL_STATUSES = (OrderStatus.COMPLETED, OrderStatus.PARTIAL, OrderStatus.CANCELED)


class OrderEvent(SQLModel, table=True):
    """One transition of an order, written in the transaction that makes it."""

    __tablename__ = "order_events"
    __table_args__ = (
        sa.Index("ix_order_events_order_id_id", "order_id", "id"),
        # Time ranges for the console's overview (migration 0018): events are written in time order.
        sa.Index("ix_order_events_created_at_brin", "created_at", postgresql_using="brin"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    order_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False))
    from_status: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    to_status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class IdempotencyKey(SQLModel, table=True):
    """A client's Idempotency-Key (REST) or request_id (legacy), scoped to its account.

    Written by the statement that places the order, under a lock on the key that a concurrent
    duplicate waits for before it replays (`orders/sql/ordersvc_place_orders.sql`): a refused
    order leaves no key behind. Kept indefinitely (the contract asks for at least 24 hours)."""

    __tablename__ = "idempotency_keys"

    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    )
    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    # SHA-256 of the request's parameters: the same key with other parameters is a conflict.
    fingerprint: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    order_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id")))
    # The order as the first response showed it, so a replay shows the same.
    snapshot: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
