"""The transactional outbox: mail is written in the transaction that decides to send it, and a
sender delivers it afterwards, retrying with backoff."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

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


class Rendered(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...


Render = Callable[[AsyncSession, OutboxMessage], Awaitable[Rendered]]  # a queued consent request's message


async def claim_due(session: AsyncSession, *, render: Render, limit: int = 1) -> list[OutboxMessage]:
    """Due messages, claimed for sending; a request's message not written yet is written now."""
    now = utc_now()
    claimed = await repository.claim_due(session, now, now + LEASE, limit)
    for message in claimed:
        if message.body_text is None and message.consent_id is not None:
            assert message.id is not None
            await render_into(session, message, await render(session, message))
    return claimed


async def unrendered(session: AsyncSession, *, limit: int) -> list[int]:
    return await repository.unrendered(session, limit)


async def render(session: AsyncSession, message_id: int, render: Render) -> None:
    """Write a queued request's message, unless a sender has done it meanwhile."""
    message = await repository.lock_unrendered(session, message_id)
    if message is not None and message.consent_id is not None:
        await render_into(session, message, await render(session, message))


async def render_into(session: AsyncSession, message: OutboxMessage, rendered: Rendered) -> None:
    assert message.id is not None
    values = {
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "headers": rendered.headers,
    }
    await repository.update(session, message.id, **values)
    for name, value in values.items():
        setattr(message, name, value)


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
