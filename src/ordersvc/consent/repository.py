from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col

from ordersvc.consent.models import ConsentStatus, RecipientConsent, RecipientMailbox, Suppression
from ordersvc.orders.models import OPEN_STATUSES, Order, OrderStatus


# Mailbox keys are computed in SQL, the same way on both sides of every comparison, by the
# database's `ordersvc_mailbox_key` (`consent/sql/`): Python's str.lower() differs from it for
# some letters, and a mismatch would let an opt-out miss an order.
def _fold(expression: sa.ColumnElement[str] | Mapped[str]) -> sa.ColumnElement[str]:
    return sa.func.ordersvc_mailbox_key(expression, type_=sa.Text)


def _key(email: str) -> sa.ColumnElement[str]:
    return _fold(sa.literal(email, sa.Text))


async def lock_address(session: AsyncSession, email: str, *, shared: bool = False) -> None:
    """Serialise opt-outs of an address with everything else that decides about it. New orders
    take the lock shared: they exclude an opt-out, not each other (orders of one pair are
    serialised by the pair's consent row, orders of one account by the account's row), so a
    popular address does not make every customer's orders to it wait in one line."""
    lock = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    await session.execute(sa.select(lock(sa.func.hashtext(_key(email)))))


async def is_suppressed(session: AsyncSession, email: str) -> bool:
    stmt = sa.select(col(Suppression.email)).where(col(Suppression.email) == _key(email))
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def add_suppression(session: AsyncSession, email: str, source: str) -> bool:
    stmt = (
        pg_insert(Suppression)
        .values(email=_key(email), source=source)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(col(Suppression.email))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def remove_suppression(session: AsyncSession, email: str) -> bool:
    stmt = sa.delete(Suppression).where(col(Suppression.email) == _key(email)).returning(col(Suppression.email))
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def list_suppressions(session: AsyncSession) -> list[Suppression]:
    return list((await session.execute(sa.select(Suppression).order_by(col(Suppression.email)))).scalars().all())


async def lock_consent(session: AsyncSession, consent_id: int) -> RecipientConsent | None:
    stmt = (
        sa.select(RecipientConsent)
        .where(col(RecipientConsent.id) == consent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_consents_of_email(session: AsyncSession, email: str) -> list[RecipientConsent]:
    stmt = (
        sa.select(RecipientConsent)
        .where(col(RecipientConsent.email) == _key(email))
        .order_by(col(RecipientConsent.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars().all())


async def consents_to_mail(session: AsyncSession, cutoff: datetime, limit: int = 100) -> list[int]:
    """Unmailed requests whose address may be mailed again (nothing sent to it since `cutoff`),
    the oldest request per address: held-back requests for busy addresses never crowd out the
    ones that can go."""
    mailbox = sa.orm.aliased(RecipientMailbox)
    per_address = (
        sa.select(col(RecipientConsent.id).label("id"))
        .outerjoin(mailbox, col(mailbox.email) == col(RecipientConsent.email))
        .where(
            col(RecipientConsent.status) == ConsentStatus.REQUESTED.value,
            col(RecipientConsent.mailed_at).is_(None),
            sa.or_(col(mailbox.last_mailed_at).is_(None), col(mailbox.last_mailed_at) <= cutoff),
        )
        .ext(distinct_on(col(RecipientConsent.email)))
        .order_by(col(RecipientConsent.email), col(RecipientConsent.id))
        .subquery()
    )
    stmt = sa.select(per_address.c.id).order_by(per_address.c.id).limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def expired_consents(session: AsyncSession, now: datetime, limit: int = 100) -> list[int]:
    stmt = (
        sa.select(col(RecipientConsent.id))
        .where(col(RecipientConsent.status) == ConsentStatus.REQUESTED.value, col(RecipientConsent.expires_at) < now)
        .order_by(col(RecipientConsent.id))
        .limit(limit)
    )
    return [i for i in (await session.execute(stmt)).scalars().all() if i is not None]


async def set_consent(session: AsyncSession, consent_id: int, **values: object) -> None:
    await session.execute(sa.update(RecipientConsent).where(col(RecipientConsent.id) == consent_id).values(**values))


async def ask_consent(session: AsyncSession, consent_id: int, *, interval: timedelta, link_lifetime: timedelta) -> bool:
    """`ordersvc_ask_consents` for one request: queue its message, unless mailed or within the window."""
    stmt = sa.select(
        sa.func.ordersvc_ask_consents(
            sa.cast(sa.literal([consent_id], sa.ARRAY(sa.BigInteger)), sa.ARRAY(sa.BigInteger)),
            interval,
            link_lifetime,
            type_=sa.Integer,
        )
    )
    return bool((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class Expiry:
    expired: bool
    refunds: int
    refunded_mills: int


async def expire_consent(session: AsyncSession, consent_id: int) -> Expiry:
    """`ordersvc_expire_consent`: the open request whose links ran out expires, its orders end."""
    stmt = sa.text("SELECT expired, refunds, refunded_mills FROM ordersvc_expire_consent(:id)").bindparams(
        id=consent_id
    )
    expired, refunds, refunded_mills = (await session.execute(stmt)).one()
    return Expiry(bool(expired), int(refunds), int(refunded_mills))


async def lock_waiting_orders(session: AsyncSession, account_id: int, email: str) -> list[Order]:
    """The pair's orders awaiting confirmation, locked, oldest first."""
    stmt = (
        sa.select(Order)
        .where(
            col(Order.account_id) == account_id,
            _fold(col(Order.email)) == _key(email),
            col(Order.status) == OrderStatus.AWAITING_CONFIRMATION.value,
        )
        .order_by(col(Order.id))
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars().all())


async def lock_open_orders_to(session: AsyncSession, email: str, *, account_id: int | None = None) -> list[Order]:
    """The unfinished orders to this address (of one account, or of every account), locked,
    oldest first (through `ix_orders_open`)."""
    stmt = sa.select(Order).where(
        _fold(col(Order.email)) == _key(email), col(Order.status).in_([s.value for s in OPEN_STATUSES])
    )
    if account_id is not None:
        stmt = stmt.where(col(Order.account_id) == account_id)
    return list((await session.execute(stmt.order_by(col(Order.id)).with_for_update())).scalars().all())


async def consent_id_of(session: AsyncSession, account_id: int, email: str) -> int | None:
    stmt = sa.select(col(RecipientConsent.id)).where(
        col(RecipientConsent.account_id) == account_id, col(RecipientConsent.email) == _key(email)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mailbox_key(session: AsyncSession, email: str) -> str:
    key: str = (await session.execute(sa.select(_key(email)))).scalar_one()
    return key
