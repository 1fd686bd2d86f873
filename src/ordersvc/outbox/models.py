from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class OutboxStatus(StrEnum):
    PENDING = "pending"  # to send (again) at next_attempt_at
    SENDING = "sending"  # claimed by a sender; if it crashed, re-sent with the same Message-ID
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt


class OutboxMessage(SQLModel, table=True):
    """A mail to send, written in the transaction that decided to send it."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # The consent requests whose message is still to be written (migration 0014).
        sa.Index(
            "ix_outbox_unrendered", "id", postgresql_where=sa.text("consent_id IS NOT NULL AND body_text IS NULL")
        ),
        sa.CheckConstraint(
            "consent_id IS NOT NULL OR (subject IS NOT NULL AND body_text IS NOT NULL"
            " AND body_html IS NOT NULL AND headers IS NOT NULL)",
            name="rendered_or_consent",
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    message_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    to_email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # A consent request's message is rendered when it is first sent (`consent_id` names the
    # request); every other message is written whole.
    consent_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("recipient_consents.id"))
    )
    # What the request asks about: the pair's orders waiting when it was queued, and their quantity.
    request_orders: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    request_quantity: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    subject: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    body_text: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    body_html: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    headers: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False, server_default="pending"))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime | None = Field(default=None, sa_column=utc_column())
    claimed_until: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    # `consent` (to a recipient: never to a suppressed address) or `account` (to an account's
    # owner, who asked for it: verification, password reset).
    purpose: str = Field(default="consent", sa_column=sa.Column(sa.Text, nullable=False, server_default="consent"))
