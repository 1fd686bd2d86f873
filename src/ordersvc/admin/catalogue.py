"""REST for the console's catalogue (`/v1/admin/...`, tag `admin`): coupons, bonus tiers, the
suppression list, worker tokens, recipients and processor events. The CLI's operations, for
admins (reads for every operator), each audited by `admin.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ordersvc.admin import service as admin
from ordersvc.admin.auth import OperatorDep
from ordersvc.admin.endpoints import ROLE, SIGNED_IN, EndingBefore, Limit, StartingAfter
from ordersvc.admin.schemas import ConsentOut
from ordersvc.consent import service as consent
from ordersvc.coupons import service as coupons
from ordersvc.coupons.models import Coupon
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import ProcessorEvent
from ordersvc.deposits.schemas import BonusTierList, BonusTierOut
from ordersvc.errors import InvalidParams
from ordersvc.fulfilment import service as fulfilment
from ordersvc.fulfilment.models import Worker
from ordersvc.money import format_usd, parse_usd
from ordersvc.operators.models import OperatorRole
from ordersvc.operators.service import require
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.pagination import LIST_ERRORS, CursorRequest
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.schemas import MoneyStr
from ordersvc.timestamps import utc_param

router = APIRouter(prefix="/v1/admin", route_class=GuardedRoute, tags=["admin"])


# Coupons --------------------------------------------------------------------------------------


class CouponOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "welcome10",
                    "amount": "10.00",
                    "max_redemptions": 100,
                    "redemptions": 7,
                    "expires": None,
                    "disabled": False,
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    code: str
    amount: MoneyStr
    max_redemptions: int | None
    redemptions: int
    expires: datetime | None
    disabled: bool
    created: datetime

    @classmethod
    def of(cls, c: Coupon) -> CouponOut:
        assert c.created_at is not None
        return cls(
            code=c.code,
            amount=format_usd(c.amount_mills),
            max_redemptions=c.max_redemptions,
            redemptions=c.redemptions,
            expires=c.expires_at,
            disabled=c.disabled_at is not None,
            created=c.created_at,
        )


class CouponList(BaseModel):
    data: list[CouponOut]


class CouponCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64)
    amount: MoneyStr
    max_redemptions: int | None = Field(default=None, ge=1, description="Redemptions in all, across accounts.")
    expires: datetime | None = None


@router.get("/coupons", operation_id="admin_coupons_list", summary="Coupons", responses=problem_responses(*SIGNED_IN))
async def admin_coupons_list(who: OperatorDep, session: SessionDep) -> CouponList:
    """Every coupon code with its amount, redemptions so far, limit, expiry and whether it is disabled."""
    return CouponList(data=[CouponOut.of(c) for c in await coupons.list_coupons(session)])


@router.post(
    "/coupons",
    operation_id="admin_coupons_create",
    summary="Create a coupon (admin)",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*SIGNED_IN, *ROLE, coupons.CouponExists, coupons.InvalidCouponCode, InvalidParams),
)
async def admin_coupons_create(body: CouponCreate, who: OperatorDep, session: SessionDep) -> CouponOut:
    """A new coupon code (case-insensitive) worth `amount`, redeemable once per account, optionally
    limited in count and time. Audited."""
    coupon = await admin.create_coupon(
        session, who.actor, who.operator, code=body.code, amount_mills=parse_usd(body.amount),
        max_redemptions=body.max_redemptions, expires_at=utc_param("expires", body.expires),
    )  # fmt: skip
    return CouponOut.of(coupon)


@router.post(
    "/coupons/{code}/disable",
    operation_id="admin_coupons_disable",
    summary="Disable a coupon (admin)",
    responses=problem_responses(*SIGNED_IN, *ROLE, coupons.CouponNotFound, coupons.InvalidCouponCode),
)
async def admin_coupons_disable(
    code: Annotated[str, Path(max_length=64)], who: OperatorDep, session: SessionDep
) -> CouponOut:
    """Stop a coupon from being redeemed; redemptions made stay. Audited."""
    return CouponOut.of(await admin.disable_coupon(session, who.actor, who.operator, code=code))


# Bonus tiers ----------------------------------------------------------------------------------


class BonusTierIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"threshold": "100.00", "percent": "5"}]})

    threshold: MoneyStr = Field(description="Deposits of at least this many USD earn the tier.")
    percent: str = Field(max_length=8, description='The bonus percentage: "5", "2.5".')


@router.get(
    "/bonus-tiers",
    operation_id="admin_bonus_tiers_list",
    summary="Bonus tiers",
    responses=problem_responses(*SIGNED_IN),
)
async def admin_bonus_tiers_list(who: OperatorDep, session: SessionDep) -> BonusTierList:
    """The deposit bonus tiers in force: the highest threshold a deposit reaches gives its percentage."""
    return BonusTierList(data=[BonusTierOut.of(t) for t in await deposits.list_bonus_tiers(session)])


@router.put(
    "/bonus-tiers",
    operation_id="admin_bonus_tiers_set",
    summary="Set the tier at a threshold (admin)",
    responses=problem_responses(*SIGNED_IN, *ROLE),
)
async def admin_bonus_tiers_set(body: BonusTierIn, who: OperatorDep, session: SessionDep) -> BonusTierOut:
    """Replaces the tier at that threshold, if any."""
    tier = await admin.set_bonus_tier(
        session, who.actor, who.operator, threshold_mills=parse_usd(body.threshold),
        basis_points=deposits.parse_percent(body.percent),
    )  # fmt: skip
    return BonusTierOut.of(tier)


@router.delete(
    "/bonus-tiers/{threshold}",
    operation_id="admin_bonus_tiers_remove",
    summary="Remove the tier at a threshold (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE),
)
async def admin_bonus_tiers_remove(
    threshold: Annotated[str, Path(max_length=24, pattern=r"^[0-9]+(\.[0-9]{1,3})?$")],
    who: OperatorDep,
    session: SessionDep,
) -> Response:
    """Remove the bonus tier at this threshold (deposits credited before keep their bonus). Audited."""
    await admin.remove_bonus_tier(session, who.actor, who.operator, threshold_mills=parse_usd(threshold))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The suppression list -------------------------------------------------------------------------


class SuppressionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "someone@example.org", "source": "recipient", "created": "2026-12-01T09:30:00Z"}]
        }
    )

    email: str
    source: Literal["recipient", "operator"] | str
    created: datetime


class SuppressionList(BaseModel):
    data: list[SuppressionOut]


RecipientEmail = Annotated[
    str,
    Query(
        min_length=1,
        max_length=320,
        description="The address. A query parameter, not a path segment: the service's log hides the value of "
        "`email` and proxies leave the query string out of their access logs.",
    ),
]


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)


@router.get(
    "/suppressions", operation_id="admin_suppressions_list", summary="The suppression list",
    responses=problem_responses(*SIGNED_IN),
)  # fmt: skip
async def admin_suppressions_list(who: OperatorDep, session: SessionDep) -> SuppressionList:
    """Every suppressed address and who suppressed it: the recipient themselves (final) or an operator."""
    rows = await consent.suppressions(session)
    return SuppressionList(
        data=[SuppressionOut(email=s.email, source=s.source, created=s.created_at) for s in rows if s.created_at]
    )


@router.post(
    "/suppressions",
    operation_id="admin_suppressions_add",
    summary="Suppress an address (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE),
)
async def admin_suppressions_add(body: EmailIn, who: OperatorDep, session: SessionDep) -> Response:
    """No message and no order to it, from any account; its open orders end, refunded."""
    await admin.suppress(session, who.actor, who.operator, email=body.email)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/suppressions",
    operation_id="admin_suppressions_remove",
    summary="Take an operator's suppression off the list (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE, consent.NotSuppressed, consent.OptOutIsFinal),
)
async def admin_suppressions_remove(email: RecipientEmail, who: OperatorDep, session: SessionDep) -> Response:
    """Only an address an operator suppressed: a recipient's own opt-out is final (409
    `opt_out_is_final`). The address goes in the query, never in the path, so that no access log
    (ours or a proxy's) records it."""
    await admin.unsuppress(session, who.actor, who.operator, email=email)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Recipients -----------------------------------------------------------------------------------


class RecipientOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "billgates@microsoft.com",
                    "opted_out": False,
                    "opted_out_by": None,
                    "consents": [
                        {
                            "id": 12,
                            "email": "billgates@microsoft.com",
                            "status": "requested",
                            "mailed": "2026-12-01T09:30:00Z",
                            "decided": None,
                        }
                    ],
                    "accounts": [42],
                }
            ]
        }
    )

    email: str
    opted_out: bool
    opted_out_by: str | None = Field(description="`recipient` (their own opt-out: final) or `operator`.")
    consents: list[ConsentOut] = Field(description="Per requesting account, newest first (account in `account_id`).")
    accounts: list[int]


@router.get(
    "/recipients",
    operation_id="admin_recipients_get",
    summary="An address's consent state and opt-out",
    responses=problem_responses(*SIGNED_IN),
)
async def admin_recipients_get(email: RecipientEmail, who: OperatorDep, session: SessionDep) -> RecipientOut:
    """An address's consent state with every customer who ordered for it, and whether it opted out (and who made it)."""
    state = await admin.recipient(session, email=email)
    return RecipientOut(
        email=state.email,
        opted_out=state.suppressed is not None,
        opted_out_by=state.suppressed.source if state.suppressed else None,
        consents=[ConsentOut.of(c) for c in state.consents],
        accounts=[c.account_id for c in state.consents],
    )


class Resent(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"queued": True}]})

    queued: bool = Field(
        description="True: the message is queued now. False: the address got one within the interval; it is sent "
        "when the interval ends."
    )


@router.post(
    "/consents/{consent_id}/resend",
    operation_id="admin_consents_resend",
    summary="Send a waiting consent request again",
    responses=problem_responses(*SIGNED_IN, *ROLE, consent.ConsentNotWaiting),
)
async def admin_consents_resend(
    consent_id: Annotated[int, Path(ge=1, le=2**63 - 1)], who: OperatorDep, session: SessionDep
) -> Resent:
    """At most one message per address per interval, as always: no one floods an inbox."""
    return Resent(queued=await admin.resend_consent(session, who.actor, who.operator, consent_id=consent_id))


# Worker tokens --------------------------------------------------------------------------------


class WorkerOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "delivery-1", "prefix": "owk_a1b2c3d4", "created": "2026-12-01T09:30:00Z", "revoked": None}
            ]
        }
    )

    name: str
    prefix: str
    created: datetime
    revoked: datetime | None

    @classmethod
    def of(cls, w: Worker) -> WorkerOut:
        assert w.created_at is not None
        return cls(name=w.name, prefix=w.prefix, created=w.created_at, revoked=w.revoked_at)


class WorkerList(BaseModel):
    data: list[WorkerOut]


class WorkerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)


class WorkerCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "worker": {
                        "name": "delivery-1",
                        "prefix": "owk_a1b2c3d4",
                        "created": "2026-12-01T09:30:00Z",
                        "revoked": None,
                    },
                    "token": "owk_a1b2c3d4...",
                }
            ]
        }
    )

    worker: WorkerOut
    token: str = Field(description="The worker's token: shown only here.")


@router.get(
    "/workers",
    operation_id="admin_workers_list",
    summary="Worker tokens",
    responses=problem_responses(*SIGNED_IN, *ROLE),
)
async def admin_workers_list(who: OperatorDep, session: SessionDep) -> WorkerList:
    """Every fulfilment worker token (its name and prefix; the token itself is never shown again)."""
    require(who.operator, OperatorRole.ADMIN)
    return WorkerList(data=[WorkerOut.of(w) for w in await fulfilment.list_workers(session)])


@router.post(
    "/workers",
    operation_id="admin_workers_create",
    summary="Create a worker token (admin)",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*SIGNED_IN, *ROLE, fulfilment.WorkerExists, fulfilment.InvalidWorkerName),
)
async def admin_workers_create(
    body: WorkerCreate, response: Response, who: OperatorDep, session: SessionDep
) -> WorkerCreated:
    """A new fulfilment worker token, shown only in this answer. Audited."""
    worker, token = await admin.create_worker(session, who.actor, who.operator, name=body.name)
    response.headers["Cache-Control"] = "no-store"
    return WorkerCreated(worker=WorkerOut.of(worker), token=token)


@router.post(
    "/workers/{name}/revoke",
    operation_id="admin_workers_revoke",
    summary="Revoke a worker token (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE, fulfilment.WorkerNotFound),
)
async def admin_workers_revoke(
    name: Annotated[str, Path(max_length=64)], who: OperatorDep, session: SessionDep
) -> Response:
    """Revoke a worker token: its next call is refused; the orders it held return to the queue when
    their lease ends. Audited."""
    await admin.revoke_worker(session, who.actor, who.operator, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Processor events ------------------------------------------------------------------------------


class ProcessorEventOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5001,
                    "processor": "chain",
                    "external_id": "USDT-TRC20:9f2c...:TXYZ1234567890",
                    "outcome": "credited",
                    "deposit_id": 77,
                    "detail": None,
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    processor: str
    external_id: str | None
    outcome: str
    deposit_id: int | None
    detail: str | None
    created: datetime

    @classmethod
    def of(cls, e: ProcessorEvent) -> ProcessorEventOut:
        assert e.id is not None
        assert e.created_at is not None
        return cls(
            id=e.id, processor=e.processor, external_id=e.external_id, outcome=e.outcome, deposit_id=e.deposit_id,
            detail=e.detail, created=e.created_at,
        )  # fmt: skip


class ProcessorEventList(BaseModel):
    data: list[ProcessorEventOut]
    has_more: bool


@router.get(
    "/deposits/events",
    operation_id="admin_deposit_events_list",
    summary="Every signed processor event and its outcome",
    responses=problem_responses(*SIGNED_IN, *LIST_ERRORS),
)
async def admin_deposit_events_list(
    who: OperatorDep,
    session: SessionDep,
    outcome: Annotated[
        Literal["credited", "unmatched", "duplicate", "not_final", "refused"] | None,
        Query(description="Only this outcome."),
    ] = None,
    limit: Limit = 50,
    starting_after: StartingAfter = None,
    ending_before: EndingBefore = None,
) -> ProcessorEventList:
    """For dispute handling: what each processor sent (signed) and what became of it. Requests with
    a bad signature are not kept (anyone can send them)."""
    page = await deposits.page_events(
        session,
        outcome=outcome,
        request=CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before),
    )
    return ProcessorEventList(data=[ProcessorEventOut.of(e) for e in page.items], has_more=page.has_more)
