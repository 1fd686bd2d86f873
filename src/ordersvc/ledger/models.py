from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.operators import models as _operators  # noqa: F401 (the operators table its foreign key names)
from ordersvc.timestamps import utc_column


class PaymentKind(StrEnum):
    CREDIT = "credit"  # an operator's manual top-up
    ORDER = "order"  # the debit for an order
    REFUND = "refund"  # money returned for an order
    DEPOSIT = "deposit"  # a crypto deposit received through a processor
    BONUS = "bonus"  # the deposit bonus of a tier, linked to its deposit
    COUPON = "coupon"  # a redeemed coupon code
    DEBIT = "debit"  # an operator's manual debit (never below a zero balance)


POSITIVE_KINDS = (PaymentKind.CREDIT, PaymentKind.REFUND, PaymentKind.DEPOSIT, PaymentKind.BONUS, PaymentKind.COUPON)
NEGATIVE_KINDS = (PaymentKind.ORDER, PaymentKind.DEBIT)
MANUAL_KINDS = (PaymentKind.CREDIT, PaymentKind.DEBIT)  # moved by an operator, with a reason


class Payment(SQLModel, table=True):
    """One signed change of an account's balance. Insert-only (a trigger refuses UPDATE and
    DELETE); corrections are new payments."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.Index("ix_payments_account_id_id", "account_id", "id"),
        # Time ranges for the console's overview (migration 0018): payments are written in time order.
        sa.Index("ix_payments_created_at_brin", "created_at", postgresql_using="brin"),
        sa.CheckConstraint(
            "(kind IN ('credit', 'refund', 'deposit', 'bonus', 'coupon') AND amount_mills > 0)"
            " OR (kind IN ('order', 'debit') AND amount_mills < 0)",
            name="amount_sign_matches_kind",
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    amount_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    email: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    order_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id")))
    coupon: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    deposit_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("deposits.id")))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # The console's operator who made a manual payment (NULL for everything else, the CLI's too).
    operator_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("operators.id")))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
