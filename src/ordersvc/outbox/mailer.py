"""The sender: delivers due outbox messages over SMTP (aiosmtplib), and runs the housekeeping
on each round: consent (mail requests whose window opened, expire unanswered ones) and the
sign-in throttle (rows past their window are deleted); once an hour, deposit addresses unused
past their recycle period go back to the pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc import idempotency
from ordersvc.accounts import throttle
from ordersvc.config import Settings, get_settings
from ordersvc.consent import service as consent
from ordersvc.deposits import addresses
from ordersvc.outbox import service as outbox
from ordersvc.outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

Send = Callable[[EmailMessage], Awaitable[object]]


# Long lines allowed (RFC 5322's 998): a List-Unsubscribe URL must not be folded or encoded.
_POLICY = policy.SMTP.clone(max_line_length=998)
# For an address with a non-ASCII mailbox name (RFC 6531/6532): headers in UTF-8, sent with SMTPUTF8.
_UTF8_POLICY = _POLICY.clone(utf8=True)


class Undeliverable(Exception):
    """A failure no retry can fix (the message is marked failed at once, with this reason)."""


def deliverable_address(address: str) -> str:
    """The address as it is best sent: an internationalised domain in its ASCII (IDNA) form, so
    that only a non-ASCII mailbox name (`用户@example.com`, `ü@…`) needs the server's SMTPUTF8."""
    if address.isascii():
        return address
    try:
        ascii_form = validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError:
        return address
    return ascii_form or address


def build_email(message: OutboxMessage, mail_from: str) -> EmailMessage:
    assert message.subject is not None
    assert message.body_text is not None
    assert message.body_html is not None
    email = EmailMessage(policy=_POLICY)
    email["From"] = mail_from
    email["To"] = deliverable_address(message.to_email)
    email["Subject"] = message.subject
    # The same Message-ID on every attempt: a resend after a crash is recognisably the same mail.
    email["Message-ID"] = message.message_id
    for name, value in (message.headers or {}).items():
        email[name] = value
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    return email


def smtp_sender(smtp_url: str) -> Send:
    """`smtp://[user:pass@]host[:port]` (plain), `smtp+starttls://...`, `smtps://...` (TLS)."""
    url = urlsplit(smtp_url)
    tls, starttls = url.scheme == "smtps", url.scheme == "smtp+starttls"
    if url.scheme not in ("smtp", "smtps", "smtp+starttls") or not url.hostname:
        raise ValueError(f"SMTP_URL must look like smtp://host:port, got {url.scheme}://...")

    async def send(email: EmailMessage) -> object:
        sender, recipient = parseaddr(str(email["From"]))[1], str(email["To"])
        utf8 = not (sender.isascii() and recipient.isascii())
        try:
            # Flattened here with our policy: aiosmtplib's own would fold (and so encode) the
            # long List-Unsubscribe URL, which mail clients then cannot use.
            return await aiosmtplib.send(
                email.as_bytes(policy=_UTF8_POLICY if utf8 else _POLICY),
                sender=sender,
                recipients=[recipient],
                mail_options=["SMTPUTF8"] if utf8 else None,
                hostname=url.hostname,
                port=url.port or (465 if tls else 587 if starttls else 25),
                username=unquote(url.username) if url.username else None,
                password=unquote(url.password) if url.password else None,
                use_tls=tls,
                start_tls=starttls,
                timeout=30,
            )
        except aiosmtplib.SMTPNotSupported as exc:
            if not utf8:
                raise
            # The server would refuse it on every attempt: fail it now, with the reason.
            raise Undeliverable(
                "the mail server does not support SMTPUTF8, which this address needs (a non-ASCII mailbox name)"
            ) from exc

    return send


def renderer(settings: Settings) -> outbox.Render:
    """How a queued consent request's message is written, with this installation's links."""

    async def render(session: AsyncSession, message: OutboxMessage) -> outbox.Rendered:
        assert message.consent_id is not None
        return await consent.render_request(
            session,
            consent_id=message.consent_id,
            orders=message.request_orders or 0,
            quantity=message.request_quantity or 0,
            settings=settings,
        )

    return render


async def render_queued(maker: async_sessionmaker[AsyncSession], settings: Settings, *, limit: int = 100) -> int:
    """Write the consent requests' messages queued since the last round (an order's statement
    queues a request, not its text: `consent.render_request`), so the outbox shows them whole.
    Returns how many were written."""
    async with maker() as session:
        ids = await outbox.unrendered(session, limit=limit)
    for message_id in ids:
        async with maker.begin() as session:
            await outbox.render(session, message_id, renderer(settings))
    return len(ids)


async def send_due(
    maker: async_sessionmaker[AsyncSession],
    send: Send,
    mail_from: str,
    *,
    settings: Settings | None = None,
    limit: int = 50,
) -> int:
    """Claim due messages one at a time (committed, so a crash leaves the message to be retried
    after its lease), send it, record the outcome. Returns how many were sent."""
    render = renderer(settings or get_settings())
    sent = 0
    for _ in range(limit):
        async with maker.begin() as session:
            claimed = await outbox.claim_due(session, render=render)
            suppressed = bool(claimed) and await outbox.is_suppressed(session, claimed[0])
            if suppressed:  # the address opted out after the message was queued
                await outbox.mark_failed_attempt(session, claimed[0], "recipient opted out", final=True)
        if not claimed:
            break
        if suppressed:
            continue
        message = claimed[0]
        try:
            await send(build_email(message, mail_from))
        except Undeliverable as exc:
            logger.warning("outbox message %s to %s not sent, for good: %s", message.id, message.to_email, exc)
            async with maker.begin() as session:
                await outbox.mark_failed_attempt(session, message, f"undeliverable: {exc}", final=True)
        except Exception as exc:  # any SMTP or network failure: retry later, with backoff
            logger.warning("outbox message %s to %s not sent: %s", message.id, message.to_email, exc)
            async with maker.begin() as session:
                await outbox.mark_failed_attempt(session, message, f"{type(exc).__name__}: {exc}")
        else:
            async with maker.begin() as session:
                await outbox.mark_sent(session, message)
            sent += 1
    return sent


async def housekeeping(maker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    await render_queued(maker, settings)
    await consent.mail_waiting_requests(maker, settings=settings)
    await consent.expire_requests(maker)
    async with maker.begin() as session:
        await throttle.prune_throttle(session)
        await idempotency.prune_replays(session)


# Recycling scans the assigned addresses: hourly is soon enough for a period counted in days.
RECYCLE_INTERVAL_SECONDS = 3600.0


async def recycle_addresses(maker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with maker.begin() as session:
        released = await addresses.recycle_unused_addresses(session, days=settings.deposit_address_recycle_days)
    if released:
        logger.info(
            "deposit addresses recycled: %d unused for %d days", len(released), settings.deposit_address_recycle_days
        )


async def run(maker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Until `stop` is set: housekeeping, then (with SMTP_URL) delivery, every few seconds."""
    send = smtp_sender(settings.smtp_url) if settings.smtp_url else None
    if send is None:
        logger.info("SMTP_URL is not set: consent messages stay in the outbox (ordersvc outbox list)")
    loop = asyncio.get_running_loop()
    recycle_at = loop.time()
    while not stop.is_set():
        try:
            await housekeeping(maker, settings)
            if loop.time() >= recycle_at:
                recycle_at = loop.time() + RECYCLE_INTERVAL_SECONDS
                await recycle_addresses(maker, settings)
            if send is not None:
                await send_due(maker, send, settings.mail_from, settings=settings)
        except Exception:
            logger.exception("mailer round failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.mailer_interval_seconds)
