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
    __table_args__ = (sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    message_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    to_email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body_text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body_html: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    headers: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
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
