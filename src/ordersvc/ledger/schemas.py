from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.ledger.models import PaymentKind
from ordersvc.ledger.repository import LedgerEntry
from ordersvc.money import format_usd
from ordersvc.schemas import Currency, MoneyStr


class BalanceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"balance": "125.50", "currency": "USD"}]})

    balance: MoneyStr
    currency: Currency = "USD"


class PaymentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1042,
                    "kind": "order",
                    "amount": "-10.00",
                    "email": "user@example.com",
                    "order_id": "A7E17A3E",
                    "coupon": None,
                    "network": None,
                    "description": None,
                    "created": "2026-01-22T10:05:00Z",
                }
            ]
        }
    )

    id: int = Field(description="Payment id; also the cursor for `starting_after` / `ending_before`.")
    kind: PaymentKind = Field(
        description="`order` and `debit` (manual) are negative; `credit` (manual), `deposit`, `bonus` (a "
        "deposit's tier bonus), `coupon` and `refund` are positive."
    )
    amount: MoneyStr
    email: str | None = Field(description="The order's target email, for order payments.")
    order_id: str | None = Field(description="The order this payment is for.")
    coupon: str | None = Field(description="The coupon code, for coupon payments.")
    network: str | None = Field(
        description="The deposit's network (`USDT-TRC20`, `BTC`, ...), for deposit payments and their bonus."
    )
    description: str | None = Field(description="The operator's reason, for manual credits and debits.")
    created: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> PaymentOut:
        payment = entry.payment
        assert payment.id is not None
        assert payment.created_at is not None
        return cls(
            id=payment.id,
            kind=PaymentKind(payment.kind),
            amount=format_usd(payment.amount_mills),
            email=payment.email,
            order_id=entry.order_public_id,
            coupon=payment.coupon,
            network=entry.deposit_network,
            description=payment.description,
            created=payment.created_at,
        )


class PaymentList(BaseModel):
    data: list[PaymentOut] = Field(description="Newest first.")
    has_more: bool = Field(description="Whether more payments lie beyond this page, in the direction of travel.")
