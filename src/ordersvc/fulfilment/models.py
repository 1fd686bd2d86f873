from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class Worker(SQLModel, table=True):
    """A fulfilment worker: authenticates with its own token, distinct from customer keys."""

    __tablename__ = "workers"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
