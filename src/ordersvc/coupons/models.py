from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"
    __table_args__ = (
        sa.CheckConstraint("amount_mills > 0", name="coupon_amount_positive"),
        sa.CheckConstraint("max_redemptions IS NULL OR max_redemptions > 0", name="coupon_max_positive"),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR redemptions <= max_redemptions", name="coupon_redemptions_within_max"
        ),
        sa.CheckConstraint("code = lower(code)", name="coupon_code_lower_case"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    # Stored lower-case: codes are case-insensitive.
    code: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    amount_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    max_redemptions: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    redemptions: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    disabled_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class CouponRedemption(SQLModel, table=True):
    """Once per account: the primary key says so."""

    __tablename__ = "coupon_redemptions"

    coupon_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("coupons.id"), primary_key=True, autoincrement=False)
    )
    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    )
    payment_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("payments.id"), nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
