"""REST: redeem a coupon."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ordersvc import idempotency
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
    responses={
        201: {"description": "Redeemed now, or replayed.", "headers": idempotency.REPLAYED_RESPONSE_HEADER},
        **problem_responses(
            coupons.CouponNotFound,
            coupons.CouponExpired,
            coupons.CouponDisabled,
            coupons.CouponExhausted,
            coupons.CouponAlreadyRedeemed,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
        ),
    },
)
async def coupons_redeem(
    body: CouponRedeem,
    account: AccountDep,
    session: SessionDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> CouponRedeemed:
    """Credit a coupon's amount to your balance. Each account redeems a code once. Refusals:
    404 `coupon_not_found`; 409 `coupon_expired`, `coupon_disabled`, `coupon_exhausted` or
    `coupon_already_redeemed`. A refusal changes nothing. With an `Idempotency-Key`, a retry
    gets the first answer again rather than `coupon_already_redeemed`."""
    assert account.id is not None
    account_id = account.id

    async def redeem() -> tuple[CouponRedeemed, int]:
        payment = await coupons.redeem(session, account_id=account_id, code=body.code)
        assert payment.coupon is not None
        return CouponRedeemed(code=payment.coupon, amount=format_usd(payment.amount_mills)), status.HTTP_201_CREATED

    keyed = idempotency.Keyed(account_id, "coupons_redeem", idempotency_key, idempotency.fingerprint(code=body.code))
    answer = await idempotency.once(session, keyed, CouponRedeemed, redeem)
    return answer.render(response)
