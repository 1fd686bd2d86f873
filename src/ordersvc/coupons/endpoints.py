"""REST: redeem a coupon."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ordersvc.accounts.auth import AccountDep
from ordersvc.coupons import service as coupons
from ordersvc.money import format_usd
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.schemas import MoneyStr

router = APIRouter(prefix="/v1", route_class=GuardedRoute)


class CouponRedeem(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "WELCOME10"}]})

    code: str = Field(max_length=64, description="The coupon code, in any case.")


class CouponRedeemed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "welcome10", "amount": "10.00"}]})

    code: str
    amount: MoneyStr = Field(description="Credited to your balance as a `coupon` payment.")


@router.post(
    "/coupons/redeem",
    operation_id="coupons_redeem",
    tags=["payments"],
    summary="Redeem a coupon",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        coupons.CouponNotFound,
        coupons.CouponExpired,
        coupons.CouponDisabled,
        coupons.CouponExhausted,
        coupons.CouponAlreadyRedeemed,
    ),
)
async def coupons_redeem(body: CouponRedeem, account: AccountDep, session: SessionDep) -> CouponRedeemed:
    """Credit a coupon's amount to your balance. Each account redeems a code once. Refusals:
    404 `coupon_not_found`; 409 `coupon_expired`, `coupon_disabled`, `coupon_exhausted` or
    `coupon_already_redeemed`. A refusal changes nothing."""
    assert account.id is not None
    payment = await coupons.redeem(session, account_id=account.id, code=body.code)
    assert payment.coupon is not None
    return CouponRedeemed(code=payment.coupon, amount=format_usd(payment.amount_mills))
