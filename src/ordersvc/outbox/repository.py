from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.outbox.models import OutboxMessage, OutboxStatus


async def add(session: AsyncSession, message: OutboxMessage) -> OutboxMessage:
    session.add(message)
    await session.flush()
    return message


async def claim_due(session: AsyncSession, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
    """Due messages (pending, or `sending` whose sender died: its lease ran out), claimed with
    SKIP LOCKED so that concurrent senders never take the same message."""
    due = sa.or_(
        sa.and_(col(OutboxMessage.status) == OutboxStatus.PENDING.value, col(OutboxMessage.next_attempt_at) <= now),
        sa.and_(col(OutboxMessage.status) == OutboxStatus.SENDING.value, col(OutboxMessage.claimed_until) < now),
    )
    ids = (
        sa.select(col(OutboxMessage.id))
        .where(due)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .values(status=OutboxStatus.SENDING.value, claimed_until=lease_until, attempts=col(OutboxMessage.attempts) + 1)
        .returning(OutboxMessage)
    )
    return list((await session.execute(stmt)).scalars().all())


async def update(session: AsyncSession, message_id: int, **values: Any) -> None:
    await session.execute(sa.update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(**values))


async def list_messages(session: AsyncSession, status: str | None, limit: int) -> list[OutboxMessage]:
    stmt = sa.select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(col(OutboxMessage.status) == status)
    return list((await session.execute(stmt)).scalars().all())


async def unrendered(session: AsyncSession, limit: int) -> list[int]:
    """Queued consent requests whose message is not written yet, oldest first."""
    stmt = (
        sa.select(col(OutboxMessage.id))
        .where(col(OutboxMessage.consent_id).is_not(None), col(OutboxMessage.body_text).is_(None))
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return [i for i in (await session.execute(stmt)).scalars().all() if i is not None]


async def lock_unrendered(session: AsyncSession, message_id: int) -> OutboxMessage | None:
    """The message, locked, if it is still unwritten and no sender holds it."""
    stmt = (
        sa.select(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.body_text).is_(None))
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
