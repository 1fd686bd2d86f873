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


def utc_param(name: str, moment: datetime | None) -> datetime | None:
    """A time a client sent, in UTC; one without an offset is read as UTC, like every time the
    API returns. Out of range once in UTC (0001-01-01T00:00:00+01:00): InvalidParams."""
    from ordersvc.errors import InvalidParams

    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidParams(f"{name} is out of range.") from None
