from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column

MIN_QUANTITY = 500
MAX_QUANTITY = 50_000


class OrderStatus(StrEnum):
    """Statuses as the wire shows them."""

    PENDING = "pending"
    IN_PROGRESS = "in progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELED = "canceled"


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_account_id_id", "account_id", "id"),
        sa.CheckConstraint(f"quantity BETWEEN {MIN_QUANTITY} AND {MAX_QUANTITY}", name="quantity_in_range"),
        sa.CheckConstraint("price_mills = quantity", name="price_is_quantity_over_1000"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="progress_is_percent"),
        sa.CheckConstraint("public_id ~ '^[0-9A-F]{8}$'", name="public_id_is_8_hex"),
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
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
