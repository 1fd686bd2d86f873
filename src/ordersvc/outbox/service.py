"""The transactional outbox: mail is written in the transaction that decides to send it, and a
sender delivers it afterwards, retrying with backoff."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.outbox import repository
from ordersvc.outbox.models import OutboxMessage, OutboxStatus
from ordersvc.timestamps import utc_now

MAX_ATTEMPTS = 8
# Far longer than one SMTP exchange (30 s timeout per step): a live sender never loses its claim.
LEASE = timedelta(minutes=5)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at 1 h."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


async def enqueue(
    session: AsyncSession,
    *,
    to_email: str,
    subject: str,
    body_text: str,
    body_html: str,
    headers: dict[str, str],
    purpose: str = "consent",
) -> OutboxMessage:
    message = OutboxMessage(
        purpose=purpose,
        message_id=f"<{uuid.uuid4().hex}@ordersvc>",
        to_email=to_email,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        headers=headers,
        status=OutboxStatus.PENDING.value,
    )
    return await repository.add(session, message)


async def claim_due(session: AsyncSession, *, limit: int = 1) -> list[OutboxMessage]:
    now = utc_now()
    return await repository.claim_due(session, now, now + LEASE, limit)


async def mark_sent(session: AsyncSession, message: OutboxMessage) -> None:
    assert message.id is not None
    await repository.update(session, message.id, status=OutboxStatus.SENT.value, sent_at=utc_now(), last_error=None)


async def is_suppressed(session: AsyncSession, message: OutboxMessage) -> bool:
    """A recipient's opt-out stops consent mail; account mail goes to the account's owner, who
    asked for it (a verification link, a password reset)."""
    from ordersvc.consent import repository as consent_repository

    if message.purpose == "account":
        return False
    return await consent_repository.is_suppressed(session, message.to_email)


async def mark_failed_attempt(
    session: AsyncSession, message: OutboxMessage, error: str, *, final: bool = False
) -> None:
    assert message.id is not None
    final = final or message.attempts >= MAX_ATTEMPTS
    await repository.update(
        session,
        message.id,
        status=(OutboxStatus.FAILED if final else OutboxStatus.PENDING).value,
        next_attempt_at=utc_now() + backoff(message.attempts),
        last_error=error[:500],
    )


async def list_outbox(session: AsyncSession, *, status: str | None = None, limit: int = 50) -> list[OutboxMessage]:
    return await repository.list_messages(session, status, limit)
