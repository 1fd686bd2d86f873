"""Customers' webhook endpoints, and the deliveries of events to them (`webhooks.sender`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to send (again) at next_attempt_at, after every earlier one of its endpoint
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retried for the whole retry period: given up (a resend tries again)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        sa.Index("ix_webhook_endpoints_account_id_id", "account_id", "id"),
        # The senders' look-up: endpoints whose queue's head is due.
        sa.Index("ix_webhook_endpoints_due", "due_at", postgresql_where=sa.text("enabled AND due_at IS NOT NULL")),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    public_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # NULL: every event type.
    event_types: list[str] | None = Field(default=None, sa_column=sa.Column(ARRAY(sa.Text)))
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    enabled: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true()))
    # Sealed (keyring, purpose webhook-secret, context the public id): `whsec_...` as the customer has it.
    secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # After a rotation: the secret before, still signing beside the new one until `previous_secret_until`.
    previous_secret: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    previous_secret_until: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # Since when every attempt failed (NULL after a success); disabled after the failing period.
    failing_since: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    disabled_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # A sender delivering to it holds it until then (one sender per endpoint: in order).
    lease_until: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # When the head of its queue is due (NULL: nothing queued). Set when deliveries are queued into
    # an empty queue, and by the sender when it gives the endpoint back (`service.release`).
    due_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime | None = Field(default=None, sa_column=utc_column())


class WebhookDelivery(SQLModel, table=True):
    """An event to one endpoint, with its attempts' outcome so far. A resend is a new delivery."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # Each event once per endpoint (a resend aside): the dispatch may read an event twice.
        sa.Index(
            "uq_webhook_deliveries_endpoint_event",
            "endpoint_id",
            "event_id",
            unique=True,
            postgresql_where=sa.text("resend_of IS NULL"),
        ),
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        # Each endpoint's queue, in order.
        sa.Index("ix_webhook_deliveries_pending", "endpoint_id", "id", postgresql_where=sa.text("status = 'pending'")),
        # Resends are younger than their events: the prune finds those whose event went.
        sa.Index("ix_webhook_deliveries_resends", "event_id", postgresql_where=sa.text("resend_of IS NOT NULL")),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="delivery_status_is_known"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    endpoint_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False)
    )
    # No foreign key: events are pruned by age, like deliveries (`webhooks.service.prune`).
    event_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    resend_of: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    status: str = Field(
        default=DeliveryStatus.PENDING.value,
        sa_column=sa.Column(sa.Text, nullable=False, server_default=DeliveryStatus.PENDING.value),
    )
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime | None = Field(default=None, sa_column=utc_column())
    # The last attempt's outcome.
    last_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    duration_ms: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    response_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class WebhookAttempt(SQLModel, table=True):
    """One HTTP request of a delivery."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    delivery_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False)
    )
    attempted_at: datetime | None = Field(default=None, sa_column=utc_column())
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    duration_ms: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    response_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class WebhookDispatch(SQLModel, table=True):
    """Where the dispatch of events to deliveries stands (one row): every event up to `after`
    was read, except the ids in `gaps`, which were not yet committed (or never will be: a rolled
    back transaction's) when events after them were read; each is looked for again until its
    time in `gaps_seen_at` is older than the gap period."""

    __tablename__ = "webhook_dispatch"
    __table_args__ = (sa.CheckConstraint("id = 1", name="one_row"),)

    id: int = Field(default=1, sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    after: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    gaps: list[int] = Field(
        default_factory=list, sa_column=sa.Column(ARRAY(sa.BigInteger), nullable=False, server_default="{}")
    )
    gaps_seen_at: list[datetime] = Field(
        default_factory=list,
        sa_column=sa.Column(ARRAY(sa.DateTime(timezone=True)), nullable=False, server_default="{}"),
    )
