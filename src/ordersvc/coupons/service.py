"""Coupon codes: created by operators, redeemed once per account for a positive payment."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.coupons import repository
from ordersvc.coupons.models import Coupon
from ordersvc.errors import Conflict, InvalidParams, NotFound
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import Payment, PaymentKind
from ordersvc.timestamps import utc_now

MAX_REDEMPTIONS = 2**31 - 1  # INTEGER
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")


class InvalidCouponCode(InvalidParams):
    code = "invalid_coupon_code"
    message = "A coupon code is 3-64 letters, digits, '-' or '_'."
    field = "code"


class CouponExists(Conflict):
    code = "coupon_exists"
    message = "A coupon with that code already exists."


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    message = "Unknown coupon code."


class CouponExpired(Conflict):
    code = "coupon_expired"
    message = "This coupon has expired."


class CouponDisabled(Conflict):
    code = "coupon_disabled"
    message = "This coupon is no longer valid."


class CouponExhausted(Conflict):
    code = "coupon_exhausted"
    message = "This coupon has been fully redeemed."


class CouponAlreadyRedeemed(Conflict):
    code = "coupon_already_redeemed"
    message = "You have already redeemed this coupon."


def normalize_code(raw: str) -> str:
    """Codes are case-insensitive: stored and compared lower-case."""
    code = raw.strip().lower()
    if _CODE.fullmatch(code) is None:
        raise InvalidCouponCode()
    return code


async def create_coupon(
    session: AsyncSession,
    *,
    code: str,
    amount_mills: int,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
) -> Coupon:
    if max_redemptions is not None and not 1 <= max_redemptions <= MAX_REDEMPTIONS:
        raise InvalidParams(f"--max-redemptions must be between 1 and {MAX_REDEMPTIONS}.")
    coupon = await repository.insert_coupon(
        session,
        code=normalize_code(code),
        amount_mills=amount_mills,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
    )
    if coupon is None:
        raise CouponExists()
    return coupon


async def redeem(session: AsyncSession, *, account_id: int, code: str) -> Payment:
    """Credit the coupon's amount to the account: once per account, never beyond the coupon's
    limit, even under concurrent redemptions (the coupon row is locked while checking)."""
    try:
        normalized = normalize_code(code)
    except InvalidCouponCode:
        raise CouponNotFound() from None
    coupon = await repository.lock_coupon(session, normalized)
    if coupon is None:
        raise CouponNotFound()
    assert coupon.id is not None
    if coupon.disabled_at is not None:
        raise CouponDisabled()
    if coupon.expires_at is not None and coupon.expires_at <= utc_now():
        raise CouponExpired()
    if await repository.was_redeemed_by(session, coupon.id, account_id):
        raise CouponAlreadyRedeemed()
    if coupon.max_redemptions is not None and coupon.redemptions >= coupon.max_redemptions:
        raise CouponExhausted()
    payment = await ledger.post_payment(
        session, account_id=account_id, kind=PaymentKind.COUPON, amount_mills=coupon.amount_mills, coupon=coupon.code
    )
    assert payment.id is not None
    await repository.record_redemption(session, coupon.id, account_id, payment.id)
    return payment


async def list_coupons(session: AsyncSession) -> list[Coupon]:
    return await repository.list_coupons(session)


async def disable_coupon(session: AsyncSession, *, code: str) -> Coupon:
    coupon = await repository.disable_coupon(session, normalize_code(code), utc_now())
    if coupon is None:
        raise CouponNotFound()
    return coupon
