"""The operator's use cases, for the console (`/v1/admin`) and the CLI: each checks the role it
needs, calls the domain that holds the rule, and records what it did in the audit log, in the
same transaction. Reads across every account (search, lists, the overview) are here too.

Roles (`operators.service.may`): `support` reads everything, cancels orders (refunded), resends
a consent message, revokes a customer's API keys or sessions and disables or enables an
account; `admin` also moves money, assigns unmatched deposits and manages operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import security, sessions
from ordersvc.accounts import service as accounts
from ordersvc.accounts.models import Account, ApiKey, BrowserSession
from ordersvc.audit import service as audit
from ordersvc.audit.service import Actor
from ordersvc.consent import service as consent
from ordersvc.consent.models import RecipientConsent, Suppression
from ordersvc.coupons import service as coupons
from ordersvc.coupons.models import Coupon
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import BonusTier, Deposit
from ordersvc.errors import InvalidParams, NotFound
from ordersvc.fulfilment import service as fulfilment
from ordersvc.fulfilment.models import Worker
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import Payment
from ordersvc.money import format_usd
from ordersvc.operators.models import Operator, OperatorRole
from ordersvc.operators.service import require
from ordersvc.orders import lifecycle
from ordersvc.orders import service as orders
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import Order, OrderStatus
from ordersvc.pagination import CursorPage, CursorRequest, InvalidCursor, fetch_cursor_page, stream_by_id
from ordersvc.timestamps import utc_now

MAX_REASON = 500


class ReasonRequired(InvalidParams):
    code = "reason_required"
    message = f"Give a reason (1 to {MAX_REASON} characters): it goes in the ledger and the audit log."
    field = "reason"


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    message = "No such customer."


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not 1 <= len(reason) <= MAX_REASON:
        raise ReasonRequired()
    return reason


async def _customer(session: AsyncSession, account_id: int, *, lock: bool = False) -> Account:
    stmt = sa.select(Account).where(col(Account.id) == account_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    account = (await session.execute(stmt)).scalar_one_or_none() if 1 <= account_id < 2**63 else None
    if account is None:
        raise CustomerNotFound()
    return account


async def require_customer(session: AsyncSession, *, account_id: int) -> None:
    """CustomerNotFound unless the account exists."""
    await _customer(session, account_id)


async def customer_id_by_email(session: AsyncSession, *, email: str) -> int:
    """The id of the customer with this email (AccountNotFound; InvalidEmail for no address)."""
    account = await accounts.get_account_by_email(session, email=email)
    assert account.id is not None
    return account.id


async def balance_of(session: AsyncSession, *, account_id: int) -> int:
    return await ledger.get_balance(session, account_id=account_id)


async def stream_customers(session: AsyncSession) -> AsyncIterator[Account]:
    async for account in stream_by_id(session, sa.select(Account), col(Account.id)):
        yield account


async def record_export(
    session: AsyncSession,
    actor: Actor,
    what: str,
    *,
    filters: OrderFilter | audit.AuditFilter | None = None,
    account_id: int | None = None,
) -> None:
    """An operator's CSV export in the audit log (`export.<what>`: who took which data out), with
    the list's filters (a filter dataclass; what is unset is left out) or the customer it is of."""
    after: dict[str, object] | None = None
    if filters is not None:
        after = {
            "filters": {
                name: value.isoformat() if isinstance(value, datetime) else getattr(value, "value", value)
                for name, value in asdict(filters).items()
                if value is not None
            }
        }
    await audit.record(
        session, actor, f"export.{what}", object_type=None if account_id is None else "account",
        object_id=account_id, after=after,
    )  # fmt: skip


# Money ----------------------------------------------------------------------------------------


async def adjust_balance(
    session: AsyncSession, actor: Actor, operator: Operator | None, *, account_id: int, amount_mills: int, reason: str
) -> Payment:
    """A manual credit (positive) or debit (negative) of a customer's balance, with a reason: a
    ledger payment carrying the operator, and its audit entry. A debit never takes the balance
    below zero. `operator` None: the CLI (the local operator)."""
    if operator is not None:
        require(operator, OperatorRole.ADMIN)
    why = _reason(reason)
    if amount_mills == 0:
        raise InvalidParams("The amount must not be zero.")
    await _customer(session, account_id)
    payment = await ledger.adjust(
        session, account_id=account_id, amount_mills=amount_mills, reason=why, operator_id=actor.operator_id
    )
    # Read after the move, which holds the account row until commit: a concurrent order cannot
    # slip between this balance and the audit's "before" (a read before the lock could be stale).
    after = await ledger.get_balance(session, account_id=account_id)
    before = after - amount_mills
    await audit.record(
        session, actor, "payment.credit" if amount_mills > 0 else "payment.debit", object_type="account",
        object_id=account_id, before={"balance": format_usd(before)},
        after={"balance": format_usd(after), "payment_id": payment.id, "amount": format_usd(amount_mills)},
        reason=why,
    )  # fmt: skip
    return payment


async def cli_credit(session: AsyncSession, *, email: str, amount_mills: int, description: str | None) -> Payment:
    """`ordersvc payments credit`: a manual credit by the local operator (the CLI), audited; the
    description stays optional there, as scripts have always sent it."""
    payment = await ledger.credit(session, email=email, amount_mills=amount_mills, description=description)
    balance = await ledger.get_balance(session, account_id=payment.account_id)
    await audit.record(
        session, Actor.local_operator(), "payment.credit", object_type="account", object_id=payment.account_id,
        before={"balance": format_usd(balance - amount_mills)},
        after={"balance": format_usd(balance), "payment_id": payment.id, "amount": format_usd(amount_mills)},
        reason=description,
    )  # fmt: skip
    return payment


async def assign_deposit(
    session: AsyncSession, actor: Actor, operator: Operator, *, deposit_id: int, email: str
) -> Deposit:
    """Credit an unmatched deposit to the customer with this email (admin)."""
    require(operator, OperatorRole.ADMIN)
    return await deposits.assign_unmatched(session, deposit_id=deposit_id, email=email, actor=actor)


# Orders ---------------------------------------------------------------------------------------


async def cancel_order(
    session: AsyncSession, actor: Actor, operator: Operator, *, public_id: str
) -> lifecycle.Cancellation:
    """Cancel any customer's order, with the refund a customer's cancel gets (support)."""
    require(operator, OperatorRole.SUPPORT)
    owner = (
        await session.execute(
            sa.select(col(Order.account_id), col(Order.status)).where(col(Order.public_id) == public_id)
        )
    ).first()
    if owner is None:
        raise OrderNotFound()
    order = await lifecycle.locked_order(session, account_id=owner[0], public_id=public_id)
    before = order.status
    cancellation = await lifecycle.cancel_locked(
        session, order, "canceled by an operator", in_progress_reason="cancellation requested by an operator"
    )
    await audit.record(
        session, actor, "order.cancel", object_type="order", object_id=public_id, before={"status": before},
        after={"status": cancellation.order.status, "refund": format_usd(cancellation.refund_mills)},
    )  # fmt: skip
    return cancellation


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: OrderStatus | None = None
    recipient: str | None = None  # the address's mailbox (any case: `ordersvc_mailbox_key`)
    account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    stuck_minutes: int | None = None  # pending or in progress, and no worker moved it for this long


def _order_where(f: OrderFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if f.status is not None:
        where.append(col(Order.status) == f.status.value)
    if f.recipient is not None:
        mailbox = sa.func.ordersvc_mailbox_key
        where.append(mailbox(col(Order.email)) == mailbox(sa.literal(f.recipient.strip(), sa.Text)))
    if f.account_id is not None:
        where.append(col(Order.account_id) == f.account_id)
    if f.since is not None:
        where.append(col(Order.created_at) >= f.since)
    if f.until is not None:
        where.append(col(Order.created_at) < f.until)
    if f.stuck_minutes is not None:
        quiet_since = utc_now() - timedelta(minutes=f.stuck_minutes)
        open_statuses = [OrderStatus.PENDING.value, OrderStatus.IN_PROGRESS.value]
        where.append(col(Order.status).in_(open_statuses))
        where.append(sa.func.coalesce(col(Order.progress_at), col(Order.created_at)) < quiet_since)
    return where


async def page_orders(session: AsyncSession, f: OrderFilter, request: CursorRequest) -> CursorPage[Order]:
    """Orders matching `f`, newest first; the cursors are public order ids (InvalidCursor for an
    id no order has)."""
    cursors = {}
    for name in ("starting_after", "ending_before"):
        public_id = getattr(request, name)
        if public_id is not None:
            found = await session.execute(
                sa.select(col(Order.id)).where(col(Order.public_id) == str(public_id).upper())
            )
            order_id = found.scalar_one_or_none()
            if order_id is None:
                raise InvalidCursor()
            cursors[name] = order_id
    by_id = CursorRequest(limit=request.limit, **cursors)
    rows, has_more = await fetch_cursor_page(session, sa.select(Order).where(*_order_where(f)), col(Order.id), by_id)
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


def stream_orders(session: AsyncSession, f: OrderFilter) -> AsyncIterator[sa.Row[Any]]:
    """The orders matching `f`, newest first, streamed (the console's export)."""
    return orders.export_rows(session, *_order_where(f))


# Customers ------------------------------------------------------------------------------------


async def search_customers(session: AsyncSession, *, query: str | None, request: CursorRequest) -> CursorPage[Account]:
    """Customers whose email contains `query` (any case), or whose id it is; all without one."""
    stmt = sa.select(Account)
    text = (query or "").strip()
    if text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        condition: sa.ColumnElement[bool] = sa.func.lower(col(Account.email)).like(pattern, escape="\\")
        if text.isascii() and text.isdigit() and len(text) < 19:
            condition = sa.or_(condition, col(Account.id) == int(text))
        stmt = stmt.where(condition)
    rows, has_more = await fetch_cursor_page(session, stmt, col(Account.id), request)
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


@dataclass(frozen=True, slots=True)
class CustomerDetail:
    account: Account
    api_keys: list[ApiKey]
    sessions: list[BrowserSession]


async def customer(session: AsyncSession, *, account_id: int) -> CustomerDetail:
    account = await _customer(session, account_id)
    return CustomerDetail(
        account,
        await accounts.list_api_keys(session, account_id=account_id),
        await sessions.list_sessions(session, account_id=account_id),
    )


async def customer_payments(session: AsyncSession, *, account_id: int, request: CursorRequest) -> CursorPage[Payment]:
    await _customer(session, account_id)
    stmt = sa.select(Payment).where(col(Payment.account_id) == account_id)
    rows, has_more = await fetch_cursor_page(
        session, stmt, col(Payment.id), request, owner_column=col(Payment.account_id)
    )
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


async def customer_deposits(session: AsyncSession, *, account_id: int, request: CursorRequest) -> CursorPage[Deposit]:
    await _customer(session, account_id)
    stmt = sa.select(Deposit).where(col(Deposit.account_id) == account_id)
    rows, has_more = await fetch_cursor_page(session, stmt, col(Deposit.id), request)
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


async def customer_consents(session: AsyncSession, *, account_id: int) -> list[RecipientConsent]:
    await _customer(session, account_id)
    stmt = (
        sa.select(RecipientConsent)
        .where(col(RecipientConsent.account_id) == account_id)
        .order_by(col(RecipientConsent.id).desc())
        .limit(200)
    )
    return list((await session.execute(stmt)).scalars().all())


async def revoke_api_key(
    session: AsyncSession, actor: Actor, operator: Operator, *, account_id: int, prefix: str
) -> None:
    require(operator, OperatorRole.SUPPORT)
    await _customer(session, account_id)
    key = await accounts.revoke_api_key(session, prefix=prefix, account_id=account_id)
    await audit.record(session, actor, "api_key.revoke", object_type="account", object_id=account_id,
                       after={"prefix": key.prefix})  # fmt: skip


async def end_customer_sessions(session: AsyncSession, actor: Actor, operator: Operator, *, account_id: int) -> int:
    require(operator, OperatorRole.SUPPORT)
    await _customer(session, account_id)
    ended = await sessions.revoke_sessions(session, account_id=account_id)
    await audit.record(session, actor, "sessions.end", object_type="account", object_id=account_id,
                       after={"ended": ended})  # fmt: skip
    return ended


async def set_customer_disabled(
    session: AsyncSession, actor: Actor, operator: Operator | None, *, account_id: int, disabled: bool
) -> Account:
    if operator is not None:
        require(operator, OperatorRole.SUPPORT)
    account = await _customer(session, account_id)
    before = account.disabled_at is not None
    account = await security.set_disabled(session, email=account.email, disabled=disabled)
    await audit.record(
        session, actor, "account.disable" if disabled else "account.enable", object_type="account",
        object_id=account_id, before={"disabled": before}, after={"disabled": disabled},
    )  # fmt: skip
    return account


# The catalogue: coupons, bonus tiers, the suppression list, worker tokens (admin) -------------


async def create_coupon(
    session: AsyncSession,
    actor: Actor,
    operator: Operator,
    *,
    code: str,
    amount_mills: int,
    max_redemptions: int | None,
    expires_at: datetime | None,
) -> Coupon:
    require(operator, OperatorRole.ADMIN)
    coupon = await coupons.create_coupon(
        session, code=code, amount_mills=amount_mills, max_redemptions=max_redemptions, expires_at=expires_at
    )
    await audit.record(
        session, actor, "coupon.create", object_type="coupon", object_id=coupon.code,
        after={"amount": format_usd(coupon.amount_mills), "max_redemptions": coupon.max_redemptions,
               "expires_at": coupon.expires_at.isoformat() if coupon.expires_at else None},
    )  # fmt: skip
    return coupon


async def disable_coupon(session: AsyncSession, actor: Actor, operator: Operator, *, code: str) -> Coupon:
    require(operator, OperatorRole.ADMIN)
    coupon = await coupons.disable_coupon(session, code=code)
    await audit.record(session, actor, "coupon.disable", object_type="coupon", object_id=coupon.code)
    return coupon


async def set_bonus_tier(
    session: AsyncSession, actor: Actor, operator: Operator, *, threshold_mills: int, basis_points: int
) -> BonusTier:
    require(operator, OperatorRole.ADMIN)
    tier = await deposits.set_bonus_tier(session, threshold_mills=threshold_mills, basis_points=basis_points)
    await audit.record(
        session, actor, "bonus_tier.set", object_type="bonus_tier", object_id=format_usd(threshold_mills),
        after={"percent": deposits.format_percent(basis_points)},
    )  # fmt: skip
    return tier


async def remove_bonus_tier(session: AsyncSession, actor: Actor, operator: Operator, *, threshold_mills: int) -> None:
    require(operator, OperatorRole.ADMIN)
    await deposits.remove_bonus_tier(session, threshold_mills=threshold_mills)
    await audit.record(
        session, actor, "bonus_tier.remove", object_type="bonus_tier", object_id=format_usd(threshold_mills)
    )


async def suppress(session: AsyncSession, actor: Actor, operator: Operator, *, email: str) -> None:
    """Put an address on the suppression list (its waiting orders end, refunded, as at an opt-out)."""
    require(operator, OperatorRole.ADMIN)
    added = await consent.suppress(session, email=email)
    await audit.record(session, actor, "suppression.add", object_type="recipient", object_id=email.strip().lower(),
                       after={"added": added})  # fmt: skip


async def unsuppress(session: AsyncSession, actor: Actor, operator: Operator, *, email: str) -> None:
    """Take an address an operator suppressed off the list. A recipient's own opt-out is final:
    no operator undoes it (`OptOutIsFinal`)."""
    require(operator, OperatorRole.ADMIN)
    await consent.remove_operator_suppression(session, email=email)
    await audit.record(session, actor, "suppression.remove", object_type="recipient", object_id=email.strip().lower())


async def create_worker(session: AsyncSession, actor: Actor, operator: Operator, *, name: str) -> tuple[Worker, str]:
    require(operator, OperatorRole.ADMIN)
    worker, token = await fulfilment.create_worker(session, name=name)
    await audit.record(session, actor, "worker.create", object_type="worker", object_id=worker.name)
    return worker, token


async def revoke_worker(session: AsyncSession, actor: Actor, operator: Operator, *, name: str) -> None:
    require(operator, OperatorRole.ADMIN)
    await fulfilment.revoke_worker(session, name=name)
    await audit.record(session, actor, "worker.revoke", object_type="worker", object_id=name)


# Recipients -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientState:
    email: str  # the mailbox key
    suppressed: Suppression | None
    consents: list[RecipientConsent]  # per requesting account, newest first


async def recipient(session: AsyncSession, *, email: str) -> RecipientState:
    """An address's consent state with every account that ordered for it, and its opt-out."""
    key = await consent.mailbox_key(session, email)
    rows = await session.execute(
        sa.select(RecipientConsent)
        .where(col(RecipientConsent.email) == key)
        .order_by(col(RecipientConsent.id).desc())
        .limit(500)
    )
    return RecipientState(key, await session.get(Suppression, key), list(rows.scalars().all()))


async def resend_consent(session: AsyncSession, actor: Actor, operator: Operator, *, consent_id: int) -> bool:
    """Ask the recipient again now (support): a new message for a request still open, within the
    one-message-per-address interval like every other (False when the interval holds it back)."""
    require(operator, OperatorRole.SUPPORT)
    queued = await consent.resend_request(session, consent_id=consent_id)
    await audit.record(session, actor, "consent.resend", object_type="consent", object_id=consent_id,
                       after={"queued": queued})  # fmt: skip
    return queued
