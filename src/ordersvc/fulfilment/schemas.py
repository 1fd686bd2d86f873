from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ordersvc.fulfilment.service import MAX_CLAIM, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS, Claimed, WorkState
from ordersvc.orders.models import OrderStatus as StoredStatus
from ordersvc.orders.schemas import OrderStatus


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limit": 10, "lease_seconds": 300}]})

    limit: StrictInt = Field(default=10, ge=1, le=MAX_CLAIM)
    lease_seconds: StrictInt = Field(default=300, ge=MIN_LEASE_SECONDS, le=MAX_LEASE_SECONDS)


class ClaimedOrder(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "A7E17A3E",
                    "email": "billgates@microsoft.com",
                    "quantity": 10000,
                    "delivered": 0,
                    "lease_until": "2026-01-22T10:05:00Z",
                    "opt_out_url": "https://orders.example.com/consent/opt-out/eyJ2IjoxfQ.c2ln",
                }
            ]
        }
    )

    id: str
    email: str = Field(description="The recipient, who confirmed this account's orders.")
    quantity: int
    delivered: int = Field(description="Already delivered (an order resumed after an expired lease keeps it).")
    lease_until: datetime
    opt_out_url: str = Field(description="Put this link in every delivery: it lets the recipient opt out for good.")

    @classmethod
    def of(cls, claimed: Claimed) -> ClaimedOrder:
        order = claimed.order
        assert order.lease_until is not None
        return cls(
            id=order.public_id,
            email=order.email,
            quantity=order.quantity,
            delivered=order.delivered,
            lease_until=order.lease_until,
            opt_out_url=claimed.opt_out_url,
        )


class ClaimedList(BaseModel):
    data: list[ClaimedOrder]


class ProgressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"delivered": 2500}]})

    delivered: StrictInt = Field(ge=0, le=50_000, description="Units delivered so far (never less than before).")


class HeartbeatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_seconds: StrictInt = Field(default=300, ge=MIN_LEASE_SECONDS, le=MAX_LEASE_SECONDS)


class FailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class WorkStateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "A7E17A3E",
                    "status": "in_progress",
                    "delivered": 2500,
                    "progress": 25,
                    "lease_until": "2026-01-22T10:05:00Z",
                    "stop": False,
                }
            ]
        }
    )

    id: str
    status: OrderStatus
    delivered: int
    progress: int
    lease_until: datetime | None
    stop: bool = Field(description="true: stop delivering (finished, or canceled by the customer or recipient).")

    @classmethod
    def of(cls, state: WorkState) -> WorkStateOut:
        order = state.order
        final = order.status != StoredStatus.IN_PROGRESS.value
        return cls(
            id=order.public_id,
            status=OrderStatus.of(order.status),
            delivered=order.delivered,
            progress=order.progress,
            lease_until=order.lease_until,
            stop=state.stop or final,
        )
