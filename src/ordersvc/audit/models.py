"""The audit log: every operator action and every operator sign-in, insert-only like the ledger
(a trigger refuses UPDATE, DELETE and TRUNCATE)."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ordersvc.operators import models as _operators  # noqa: F401 (the operators table its foreign key names)
from ordersvc.timestamps import utc_column


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_operator_id_id", "operator_id", "id"),
        sa.Index("ix_audit_log_object", "object_type", "object_id", "id"),
        sa.Index("ix_audit_log_action_id", "action", "id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    # Who: an operator of the console (`operator_id`), or the CLI on the server (`cli`, the
    # operating-system user in `actor`). `actor` is what the log shows, kept as it was then.
    operator_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("operators.id")))
    actor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    action: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    object_type: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    object_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    before: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    after: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    ip: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
