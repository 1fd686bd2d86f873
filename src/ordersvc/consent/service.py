"""Recipient consent: work on an order starts only after the owner of its target mailbox has
confirmed, for that customer account (double opt-in); anyone can opt an address out for good.

The only mail the service sends is the confirmation request: one per address per interval
(24 h by default), however many orders arrive."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import repository as accounts_repository
from ordersvc.accounts.models import Account
from ordersvc.config import Settings, get_settings
from ordersvc.consent import repository, tokens
from ordersvc.consent.messages import ConsentLinks, RenderedMessage, confirmation_message
from ordersvc.consent.models import ConsentStatus, RecipientConsent, Suppression
from ordersvc.consent.tokens import ConsentAction, ConsentToken
from ordersvc.emails import normalize_email
from ordersvc.errors import Conflict, NotFound
from ordersvc.keyring import keyring
from ordersvc.ops import metrics
from ordersvc.orders import lifecycle
from ordersvc.orders.models import OrderStatus
from ordersvc.timestamps import utc_now

logger = logging.getLogger(__name__)


class ConsentClosed(Conflict):
    code = "consent_closed"
    message = "This request is no longer open."


class NotSuppressed(NotFound):
    message = "That address is not on the suppression list."


def _links(settings: Settings, consent_id: int, expires: int) -> ConsentLinks:
    def link(action: ConsentAction) -> str:
        token = tokens.sign(keyring(settings), ConsentToken(consent_id, action, expires))
        return f"{settings.public_url.rstrip('/')}/consent/{action.value}/{token}"

    return ConsentLinks(link(ConsentAction.CONFIRM), link(ConsentAction.DECLINE), link(ConsentAction.OPT_OUT))


async def request_confirmation(session: AsyncSession, *, consent_id: int, settings: Settings) -> bool:
    """Queue the pair's confirmation message unless it was sent already or the address got one
    within the interval (then the housekeeping sends it when the window opens): the rule is the
    database's `ordersvc_ask_consents` (`consent/sql/`), which a new order's statement runs too.
    The message itself is written when it is sent (`render_request`)."""
    return await repository.ask_consent(
        session,
        consent_id,
        interval=timedelta(hours=settings.consent_mail_interval_hours),
        link_lifetime=timedelta(hours=settings.consent_link_hours),
    )


async def render_request(
    session: AsyncSession, *, consent_id: int, orders: int, quantity: int, settings: Settings
) -> RenderedMessage:
    """The confirmation message of a queued request, as it is sent: who asks, about the orders
    that were waiting when it was queued, with links that expire with the request."""
    consent = await session.get_one(RecipientConsent, consent_id)
    requester = (await session.get_one(Account, consent.account_id)).email
    expires = consent.expires_at or utc_now() + timedelta(hours=settings.consent_link_hours)
    subject, text, html, headers = confirmation_message(
        requester=requester,
        orders=orders,
        quantity=quantity,
        links=_links(settings, consent_id, int(expires.timestamp())),
        hours=settings.consent_link_hours,
    )
    return RenderedMessage(subject, text, html, headers)


@dataclass(frozen=True, slots=True)
class Decision:
    action: ConsentAction
    requester: str
    email: str
    changed: bool  # False when the same answer was given before


async def describe(session: AsyncSession, *, token: str, settings: Settings | None = None) -> dict[str, Any]:
    """What a link is about, for the page that asks the recipient to press the button."""
    settings = settings or get_settings()
    parsed = tokens.verify(keyring(settings), token, now=int(utc_now().timestamp()))
    consent = await session.get(RecipientConsent, parsed.consent_id)
    if consent is None:
        raise tokens.InvalidToken()
    requester = (await session.get_one(Account, consent.account_id)).email
    return {"action": parsed.action, "requester": requester, "email": consent.email, "status": consent.status}


async def decide(session: AsyncSession, *, token: str, settings: Settings | None = None) -> Decision:
    """Act on a link: confirm (waiting orders become pending), decline (waiting orders are
    canceled and refunded), or opt out (the address is suppressed for every account and its
    open orders are canceled, refunding what was not delivered)."""
    settings = settings or get_settings()
    parsed = tokens.verify(keyring(settings), token, now=int(utc_now().timestamp()))
    if parsed.action is ConsentAction.OPT_OUT:
        # Not locked here: opt_out takes the address lock first and the consent rows after it,
        # in the order new orders take them (a consent row, then the address, would deadlock).
        found = await session.get(RecipientConsent, parsed.consent_id)
        if found is None:
            raise tokens.InvalidToken()
        requester = (await session.get_one(Account, found.account_id)).email
        changed = await opt_out(session, email=found.email, source="recipient")
        return Decision(parsed.action, requester, found.email, changed)
    consent = await repository.lock_consent(session, parsed.consent_id)
    if consent is None:
        raise tokens.InvalidToken()
    assert consent.id is not None
    requester = (await session.get_one(Account, consent.account_id)).email
    if parsed.action is ConsentAction.CONFIRM:
        if consent.status == ConsentStatus.CONFIRMED.value:
            return Decision(parsed.action, requester, consent.email, False)
        if consent.status != ConsentStatus.REQUESTED.value or await repository.is_suppressed(session, consent.email):
            raise ConsentClosed()
        await repository.set_consent(session, consent.id, status=ConsentStatus.CONFIRMED.value, decided_at=utc_now())
        for order in await repository.lock_waiting_orders(session, consent.account_id, consent.email):
            await lifecycle.transition(session, order, OrderStatus.PENDING, "recipient confirmed")
        return Decision(parsed.action, requester, consent.email, True)
    # Decline: also withdraws an earlier confirmation for this account.
    if consent.status == ConsentStatus.DECLINED.value:
        return Decision(parsed.action, requester, consent.email, False)
    await repository.set_consent(session, consent.id, status=ConsentStatus.DECLINED.value, decided_at=utc_now())
    # This account's orders only, as the order statement locks them (a pair's consent row, its
    # orders, then the account row): locking other accounts' orders could close a cycle with a
    # statement that holds their account rows.
    for order in await repository.lock_open_orders_to(session, consent.email, account_id=consent.account_id):
        await lifecycle.cancel_locked(session, order, "recipient declined")
    return Decision(parsed.action, requester, consent.email, True)


async def opt_out(session: AsyncSession, *, email: str, source: str) -> bool:
    """Suppress the address for good: no more messages or orders, from any account; its open
    orders are canceled (refunded now, or as delivered so far when work had started)."""
    await repository.lock_address(session, email)
    added = await repository.add_suppression(session, email, source)
    now = utc_now()
    for consent in await repository.lock_consents_of_email(session, email):
        if consent.status != ConsentStatus.DECLINED.value:
            assert consent.id is not None
            await repository.set_consent(session, consent.id, status=ConsentStatus.DECLINED.value, decided_at=now)
    orders = await repository.lock_open_orders_to(session, email)
    # Accounts locked in id order before any refund: two opt-outs refunding the same accounts
    # cannot deadlock.
    for account_id in sorted({o.account_id for o in orders}):
        await accounts_repository.lock_account(session, account_id)
    for order in orders:
        await lifecycle.cancel_locked(session, order, "recipient opted out")
    return added


async def mail_waiting_requests(maker: async_sessionmaker[AsyncSession], *, settings: Settings | None = None) -> int:
    """Send the requests held back by an address's mail window, now that it may have opened.
    One transaction per request, so that housekeeping never holds one pair's lock while
    waiting for another's."""
    settings = settings or get_settings()
    cutoff = utc_now() - timedelta(hours=settings.consent_mail_interval_hours)
    async with maker() as session:
        consent_ids = await repository.consents_to_mail(session, cutoff)
    sent = 0
    for consent_id in consent_ids:
        async with maker.begin() as session:
            sent += await request_confirmation(session, consent_id=consent_id, settings=settings)
    return sent


async def expire_requests(maker: async_sessionmaker[AsyncSession]) -> int:
    """Unanswered requests past their links' expiry: expired, and their orders canceled with
    a full refund (the database's `ordersvc_expire_consent`, which a new order to the pair runs
    too when it comes first). One transaction per request."""
    async with maker() as session:
        consent_ids = await repository.expired_consents(session, utc_now())
    expired = 0
    for consent_id in consent_ids:
        async with maker.begin() as session:
            expiry = await repository.expire_consent(session, consent_id)
            metrics.count_after_commit(session, partial(metrics.REFUNDS.inc, expiry.refunds))
            metrics.count_after_commit(session, partial(metrics.REFUNDED_MILLS.inc, expiry.refunded_mills))
        expired += expiry.expired
    return expired


# Operators ---------------------------------------------------------------------------------


async def suppress(session: AsyncSession, *, email: str) -> bool:
    return await opt_out(session, email=normalize_email(email.strip()), source="operator")


async def unsuppress(session: AsyncSession, *, email: str) -> None:
    if not await repository.remove_suppression(session, normalize_email(email.strip())):
        raise NotSuppressed()


async def suppressions(session: AsyncSession) -> list[Suppression]:
    return await repository.list_suppressions(session)


class OptOutIsFinal(Conflict):
    code = "opt_out_is_final"
    message = "This address opted out itself: that is final, and no operator can undo it."


class ConsentNotWaiting(Conflict):
    code = "consent_not_waiting"
    message = "This request is not waiting for the recipient (confirmed, declined or expired): nothing to resend."


async def mailbox_key(session: AsyncSession, email: str) -> str:
    """The key an address is stored and compared under (the database's `ordersvc_mailbox_key`)."""
    return await repository.mailbox_key(session, email.strip())


async def remove_operator_suppression(session: AsyncSession, *, email: str) -> None:
    """Take an operator's suppression off the list; a recipient's own opt-out stays (OptOutIsFinal)."""
    key = await mailbox_key(session, email)
    found = await session.get(Suppression, key, with_for_update=True)
    if found is None:
        raise NotSuppressed()
    if found.source != "operator":
        raise OptOutIsFinal()
    await repository.remove_suppression(session, key)


async def resend_request(session: AsyncSession, *, consent_id: int, settings: Settings | None = None) -> bool:
    """Send a waiting request's message again: it is marked unmailed and asked, under the same rule
    as every message (`ordersvc_ask_consents`: at most one per address per interval; held back,
    the housekeeping sends it when the window opens). True when queued now."""
    settings = settings or get_settings()
    found = await repository.lock_consent(session, consent_id) if 1 <= consent_id < 2**63 else None
    if found is None:
        raise NotFound("No such consent request.")
    if found.status != ConsentStatus.REQUESTED.value:
        raise ConsentNotWaiting()
    await repository.set_consent(session, consent_id, mailed_at=None)
    return await request_confirmation(session, consent_id=consent_id, settings=settings)
