from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class ConsentStatus(StrEnum):
    REQUESTED = "requested"  # the recipient has not answered (yet)
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"  # no answer within the link's lifetime


class RecipientConsent(SQLModel, table=True):
    """Whether the owner of `email` agreed to receive this account's orders (double opt-in)."""

    __tablename__ = "recipient_consents"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "email", name="uq_recipient_consents_account_email"),
        # An address's requests across accounts: its opt-out, the console's recipient page (0019).
        sa.Index("ix_recipient_consents_email_id", "email", "id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    # Lower-cased: one consent per mailbox, whatever the case orders used.
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # When the confirmation message was queued (None: waiting for the address's mail window).
    mailed_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # The links' expiry; an unanswered request expires then.
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    decided_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class Suppression(SQLModel, table=True):
    """An address that opted out for good: no message and no order, from any account."""

    __tablename__ = "suppressions"

    email: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # "recipient" or "operator"
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class RecipientMailbox(SQLModel, table=True):
    """When an address was last sent a confirmation message: at most one per interval."""

    __tablename__ = "recipient_mailboxes"

    email: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    last_mailed_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
