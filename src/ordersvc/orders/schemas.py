from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt

from ordersvc.errors import ServiceError
from ordersvc.money import format_usd
from ordersvc.orders import lifecycle, models
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY, PUBLIC_ID_PATTERN, Order, OrderEvent
from ordersvc.schemas import MoneyStr

if TYPE_CHECKING:
    from ordersvc.orders.service import NewOrder, PlacedBatch

ORDER_ID_PATTERN = PUBLIC_ID_PATTERN


class OrderStatus(StrEnum):
    """An order's status as the REST API writes it: `models.OrderStatus` member for member, in
    snake_case (the stored value, which the legacy API keeps, has spaces)."""

    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELED = "canceled"

    @classmethod
    def of(cls, stored: str) -> OrderStatus:
        return cls[models.OrderStatus(stored).name]

    @property
    def stored(self) -> models.OrderStatus:
        return models.OrderStatus[self.name]


class OrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "billgates@microsoft.com", "quantity": 10000}]}
    )

    email: str = Field(
        max_length=254,
        description="The target mailbox.",
        json_schema_extra={"format": "email"},
    )
    # The range is checked by the service (code `invalid_quantity`), and documented here.
    quantity: StrictInt = Field(
        description=f"{MIN_QUANTITY} to {MAX_QUANTITY}. The price is quantity / 1000 USD, debited at once.",
        json_schema_extra={"minimum": MIN_QUANTITY, "maximum": MAX_QUANTITY},
    )


class OrderBatchLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254, description="The target mailbox.", json_schema_extra={"format": "email"})
    quantity: StrictInt = Field(
        description=f"{MIN_QUANTITY} to {MAX_QUANTITY}; out of range, the line is refused with "
        "`invalid_quantity` (the others are still placed).",
        json_schema_extra={"minimum": MIN_QUANTITY, "maximum": MAX_QUANTITY},
    )
    idempotency_key: str | None = Field(
        default=None,
        max_length=255,
        description="This line's own key, as the `Idempotency-Key` of `POST /v1/orders` (the same keys: a "
        "line and a single order with one key are one order).",
    )


class OrderBatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "orders": [
                        {"email": "billgates@microsoft.com", "quantity": 10000},
                        {"email": "someone@example.com", "quantity": 500},
                    ]
                }
            ]
        },
    )

    # The count is checked by the service (code `invalid_batch`), and documented here.
    orders: list[OrderBatchLine] = Field(
        description="1 to 100 lines, each decided alone, in this order, as if sent one by one.",
        json_schema_extra={"minItems": 1, "maxItems": 100},
    )


class LineProblem(BaseModel):
    code: str = Field(
        description="`invalid_email`, `invalid_quantity`, `invalid_idempotency_key`, `idempotency_conflict`, "
        "`recipient_opted_out` or `insufficient_balance`: the codes `POST /v1/orders` answers with."
    )
    message: str


class OrderBatchResult(BaseModel):
    line: int = Field(ge=1, description="The line's position in the request, from 1.")
    order: OrderOut | None = Field(description="The line's order; null when the line was refused.")
    replayed: bool = Field(description="`true` when the line's idempotency key had placed this order before.")
    problem: LineProblem | None = Field(description="Why the line was refused; null when it has an order.")


class OrderBatchOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "line": 1,
                            "order": {
                                "id": "A7E17A3E",
                                "email": "billgates@microsoft.com",
                                "quantity": 10000,
                                "price": "10.00",
                                "status": "awaiting_confirmation",
                                "progress": 0,
                                "created": "2026-01-22T10:00:00Z",
                                "cancelable": True,
                            },
                            "replayed": False,
                            "problem": None,
                        },
                        {
                            "line": 2,
                            "order": None,
                            "replayed": False,
                            "problem": {"code": "insufficient_balance", "message": "Insufficient balance."},
                        },
                    ],
                    "placed": 1,
                    "refused": 1,
                    "charged": "10.00",
                }
            ]
        }
    )

    results: list[OrderBatchResult] = Field(description="One per line, in the request's order.")
    placed: int = Field(description="Lines with an order (placed now or replayed).")
    refused: int = Field(description="Lines with a problem.")
    charged: MoneyStr = Field(
        description="What the orders placed by this request debited (a replayed line is not charged again)."
    )

    @classmethod
    def of(cls, batch: PlacedBatch) -> OrderBatchOut:
        results: list[OrderBatchResult] = []
        charged = 0
        for line, outcome in enumerate(batch.lines, start=1):
            if isinstance(outcome, ServiceError):
                problem = LineProblem(code=outcome.code, message=outcome.message)
                results.append(OrderBatchResult(line=line, order=None, replayed=False, problem=problem))
                continue
            if not outcome.replayed:
                charged += outcome.order.price_mills
            order = OrderOut.of(outcome.order)
            results.append(OrderBatchResult(line=line, order=order, replayed=outcome.replayed, problem=None))
        refused = sum(1 for r in results if r.problem is not None)
        return cls(results=results, placed=len(results) - refused, refused=refused, charged=format_usd(charged))


class OrderOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "A7E17A3E",
                    "email": "billgates@microsoft.com",
                    "quantity": 10000,
                    "price": "10.00",
                    "status": "pending",
                    "progress": 0,
                    "created": "2026-01-22T10:00:00Z",
                    "cancelable": True,
                }
            ]
        }
    )

    id: str = Field(pattern=ORDER_ID_PATTERN, description="Public order id: 8 uppercase hex characters.")
    email: str
    quantity: int
    price: MoneyStr
    status: OrderStatus
    progress: int = Field(ge=0, le=100, description="Percent delivered.")
    created: datetime
    cancelable: bool = Field(
        description="Whether `POST /v1/orders/{order_id}/cancel` would be accepted now: while the order is "
        "`awaiting_confirmation`, `pending` or `in_progress` (in progress, the cancellation is recorded for "
        "its worker; asking again once it is recorded is accepted and changes nothing)."
    )

    @classmethod
    def of(cls, order: Order | NewOrder) -> OrderOut:
        assert order.created_at is not None
        return cls(
            id=order.public_id,
            email=order.email,
            quantity=order.quantity,
            price=format_usd(order.price_mills),
            status=OrderStatus.of(order.status),
            progress=order.progress,
            created=order.created_at,
            cancelable=lifecycle.cancelable(order.status),
        )


class OrderList(BaseModel):
    data: list[OrderOut] = Field(description="Newest first.")
    has_more: bool = Field(description="Whether more orders lie beyond this page, in the direction of travel.")


class OrderEventOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"from_status": None, "to_status": "pending", "reason": "placed", "created": "2026-01-22T10:00:00Z"}
            ]
        }
    )

    from_status: OrderStatus | None = Field(description="null for the first event (the order was placed).")
    to_status: OrderStatus
    reason: str
    created: datetime

    @classmethod
    def of(cls, event: OrderEvent) -> OrderEventOut:
        assert event.created_at is not None
        return cls(
            from_status=OrderStatus.of(event.from_status) if event.from_status else None,
            to_status=OrderStatus.of(event.to_status),
            reason=event.reason,
            created=event.created_at,
        )


class OrderEventList(BaseModel):
    data: list[OrderEventOut] = Field(description="Oldest first.")


ORDER_EXAMPLE: dict[str, JsonValue] = {
    "id": "A7E17A3E",
    "email": "billgates@microsoft.com",
    "quantity": 10000,
    "price": "10.00",
    "status": "canceled",
    "progress": 0,
    "created": "2026-01-22T10:00:00Z",
    "cancelable": False,
}


class OrderCancellation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"order": ORDER_EXAMPLE, "refund": "10.00"}]})

    order: OrderOut
    refund: MoneyStr = Field(
        description="Refunded now. `0.00` for an order in progress: it stops at its worker's next call "
        "and ends `partial`, with a refund of the undelivered share."
    )
