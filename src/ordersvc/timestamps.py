"""Timestamps: stored as `timestamptz`, always UTC in the core."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


def utc_column(*, index: bool = False) -> sa.Column[datetime]:
    # clock_timestamp(), not now(): rows inserted after waiting for an account lock must not
    # carry the (earlier) start time of their transaction, or `created` would go backwards.
    return sa.Column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()"), index=index
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
