"""The console API's bodies (`/v1/admin`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.accounts.models import Account, ApiKey, BrowserSession
from ordersvc.admin.overview import Overview
from ordersvc.admin.service import CustomerDetail
from ordersvc.audit.models import AuditEntry
from ordersvc.consent.models import RecipientConsent
from ordersvc.deposits.models import Deposit
from ordersvc.ledger.models import Payment, PaymentKind
from ordersvc.money import format_usd
from ordersvc.operators.models import Operator, OperatorRole
from ordersvc.orders import lifecycle
from ordersvc.orders.models import Order
from ordersvc.orders.schemas import OrderStatus
from ordersvc.schemas import MoneyStr

# Operators and their sign-in ------------------------------------------------------------------


class OperatorOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "email": "ops@example.com",
                    "role": "admin",
                    "totp_enrolled": True,
                    "disabled": False,
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    email: str
    role: OperatorRole
    totp_enrolled: bool
    disabled: bool
    created: datetime

    @classmethod
    def of(cls, operator: Operator) -> OperatorOut:
        assert operator.id is not None
        assert operator.created_at is not None
        return cls(
            id=operator.id,
            email=operator.email,
            role=OperatorRole(operator.role),
            totp_enrolled=operator.totp_enabled_at is not None,
            disabled=operator.disabled_at is not None,
            created=operator.created_at,
        )


class OperatorList(BaseModel):
    data: list[OperatorOut]


class OperatorSessionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "operator": {
                        "id": 1,
                        "email": "ops@example.com",
                        "role": "admin",
                        "totp_enrolled": True,
                        "disabled": False,
                        "created": "2026-12-01T09:30:00Z",
                    },
                    "stage": "signed_in",
                    "csrf_token": "3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a1c",
                }
            ]
        }
    )

    operator: OperatorOut
    stage: Literal["enrol_totp", "signed_in"] = Field(
        description="`enrol_totp`: this session reaches only `/v1/admin/auth/totp/*` until the first code is "
        "confirmed; `signed_in`: everything the role allows."
    )
    csrf_token: str = Field(description="Send it as `X-CSRF-Token` with every request that changes something.")


class OperatorLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(default=None, max_length=32, description="Required once the second factor is set up.")


class OperatorPasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(max_length=200, description="From the one-time link (the part after `#/set-password/`).")
    password: str = Field(max_length=1024)


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=32)


class TotpEnrolmentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/ordersvc%20console:ops@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ordersvc%20console&algorithm=SHA1&digits=6&period=30",
                }
            ]
        }
    )

    secret: str = Field(description="Base32, for typing into the authenticator app.")
    otpauth_uri: str = Field(description="The same as an `otpauth://` URI, for a QR code.")


class OperatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    role: OperatorRole


class OperatorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: OperatorRole | None = None
    disabled: bool | None = None


class OperatorLinkOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "operator": {
                        "id": 1,
                        "email": "ops@example.com",
                        "role": "admin",
                        "totp_enrolled": True,
                        "disabled": False,
                        "created": "2026-12-01T09:30:00Z",
                    },
                    "link": "https://orders.example.com/admin/#/set-password/3q2-Xb...",
                    "expires": "2026-12-02T09:30:00Z",
                }
            ]
        }
    )

    operator: OperatorOut
    link: str = Field(description="The one-time link where the operator chooses a password. Shown only here.")
    expires: datetime


# Customers ------------------------------------------------------------------------------------


class CustomerOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "email": "alice@example.com",
                    "balance": "25.00",
                    "state": "active",
                    "orders": 3,
                    "payments": 4,
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    email: str
    balance: MoneyStr
    state: Literal["active", "unverified", "disabled"]
    orders: int
    payments: int
    created: datetime

    @classmethod
    def of(cls, account: Account) -> CustomerOut:
        assert account.id is not None
        assert account.created_at is not None
        state: Literal["active", "unverified", "disabled"] = (
            "disabled" if account.disabled_at else ("active" if account.email_verified_at else "unverified")
        )
        return cls(
            id=account.id,
            email=account.email,
            balance=format_usd(account.balance_mills),
            state=state,
            orders=account.orders_count,
            payments=account.payments_count,
            created=account.created_at,
        )


class CustomerList(BaseModel):
    data: list[CustomerOut]
    has_more: bool


class CustomerApiKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prefix": "osk_a1b2c3d4", "name": "", "created": "2026-12-01T09:30:00Z", "revoked": None}]
        }
    )

    prefix: str
    name: str
    created: datetime
    revoked: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> CustomerApiKeyOut:
        assert key.created_at is not None
        return cls(prefix=key.prefix, name=key.name, created=key.created_at, revoked=key.revoked_at)


class CustomerSessionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "user_agent": "Mozilla/5.0",
                    "ip": "203.0.113.7",
                    "created": "2026-12-01T09:30:00Z",
                    "last_seen": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    user_agent: str
    ip: str
    created: datetime
    last_seen: datetime

    @classmethod
    def of(cls, s: BrowserSession) -> CustomerSessionOut:
        assert s.id is not None
        assert s.created_at is not None
        assert s.last_seen_at is not None
        return cls(id=s.id, user_agent=s.user_agent, ip=s.ip, created=s.created_at, last_seen=s.last_seen_at)


class CustomerDetailOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer": {
                        "id": 42,
                        "email": "alice@example.com",
                        "balance": "25.00",
                        "state": "active",
                        "orders": 3,
                        "payments": 4,
                        "created": "2026-12-01T09:30:00Z",
                    },
                    "api_keys": [
                        {"prefix": "osk_a1b2c3d4", "name": "", "created": "2026-12-01T09:30:00Z", "revoked": None}
                    ],
                    "sessions": [
                        {
                            "id": 5,
                            "user_agent": "Mozilla/5.0",
                            "ip": "203.0.113.7",
                            "created": "2026-12-01T09:30:00Z",
                            "last_seen": "2026-12-01T09:30:00Z",
                        }
                    ],
                }
            ]
        }
    )

    customer: CustomerOut
    api_keys: list[CustomerApiKeyOut]
    sessions: list[CustomerSessionOut]

    @classmethod
    def of(cls, detail: CustomerDetail) -> CustomerDetailOut:
        return cls(
            customer=CustomerOut.of(detail.account),
            api_keys=[CustomerApiKeyOut.of(k) for k in detail.api_keys],
            sessions=[CustomerSessionOut.of(s) for s in detail.sessions],
        )


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"direction": "credit", "amount": "10.00", "reason": "goodwill, ticket 4711"}]},
    )

    direction: Literal["credit", "debit"]
    amount: MoneyStr = Field(description="Positive: the direction says which way it moves.")
    reason: str = Field(max_length=500, description="Required: stored on the payment and in the audit log.")


class AdminPaymentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 901,
                    "kind": "credit",
                    "amount": "10.00",
                    "email": None,
                    "coupon": None,
                    "description": "goodwill, ticket 4711",
                    "operator_id": 1,
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    kind: PaymentKind
    amount: MoneyStr
    email: str | None
    coupon: str | None
    description: str | None
    operator_id: int | None
    created: datetime

    @classmethod
    def of(cls, p: Payment) -> AdminPaymentOut:
        assert p.id is not None
        assert p.created_at is not None
        return cls(
            id=p.id,
            kind=PaymentKind(p.kind),
            amount=format_usd(p.amount_mills),
            email=p.email,
            coupon=p.coupon,
            description=p.description,
            operator_id=p.operator_id,
            created=p.created_at,
        )


class AdminPaymentList(BaseModel):
    data: list[AdminPaymentOut]
    has_more: bool


class AdjustmentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment": {
                        "id": 901,
                        "kind": "credit",
                        "amount": "10.00",
                        "email": None,
                        "coupon": None,
                        "description": "goodwill, ticket 4711",
                        "operator_id": 1,
                        "created": "2026-12-01T09:30:00Z",
                    },
                    "balance": "35.00",
                }
            ]
        }
    )

    payment: AdminPaymentOut
    balance: MoneyStr


class ConsentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "email": "billgates@microsoft.com",
                    "status": "requested",
                    "mailed": "2026-12-01T09:30:00Z",
                    "decided": None,
                }
            ]
        }
    )

    id: int
    email: str
    status: str
    mailed: datetime | None
    decided: datetime | None

    @classmethod
    def of(cls, c: RecipientConsent) -> ConsentOut:
        assert c.id is not None
        return cls(id=c.id, email=c.email, status=c.status, mailed=c.mailed_at, decided=c.decided_at)


class ConsentList(BaseModel):
    data: list[ConsentOut]


# Orders and deposits --------------------------------------------------------------------------


class AdminOrderOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "A7E17A3E",
                    "account_id": 42,
                    "email": "billgates@microsoft.com",
                    "quantity": 10000,
                    "price": "10.00",
                    "status": "in_progress",
                    "progress": 37,
                    "delivered": 3700,
                    "cancel_requested": False,
                    "cancelable": True,
                    "created": "2026-12-01T09:30:00Z",
                    "last_moved": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: str
    account_id: int
    email: str
    quantity: int
    price: MoneyStr
    status: OrderStatus
    progress: int
    delivered: int
    cancel_requested: bool
    cancelable: bool
    created: datetime
    last_moved: datetime | None = Field(description="When a worker last claimed it or reported progress.")

    @classmethod
    def of(cls, o: Order) -> AdminOrderOut:
        assert o.created_at is not None
        return cls(
            id=o.public_id,
            account_id=o.account_id,
            email=o.email,
            quantity=o.quantity,
            price=format_usd(o.price_mills),
            status=OrderStatus.of(o.status),
            progress=o.progress,
            delivered=o.delivered,
            cancel_requested=o.cancel_requested_at is not None,
            cancelable=lifecycle.cancelable(o.status),
            created=o.created_at,
            last_moved=o.progress_at,
        )


class AdminOrderList(BaseModel):
    data: list[AdminOrderOut]
    has_more: bool


class AdminCancellationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order": {
                        "id": "A7E17A3E",
                        "account_id": 42,
                        "email": "billgates@microsoft.com",
                        "quantity": 10000,
                        "price": "10.00",
                        "status": "canceled",
                        "progress": 37,
                        "delivered": 3700,
                        "cancel_requested": False,
                        "cancelable": False,
                        "created": "2026-12-01T09:30:00Z",
                        "last_moved": "2026-12-01T09:30:00Z",
                    },
                    "refund": "6.30",
                }
            ]
        }
    )

    order: AdminOrderOut
    refund: MoneyStr


class AdminDepositOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 77,
                    "account_id": None,
                    "processor": "chain",
                    "network": "USDT-TRC20",
                    "address": "TXYZ1234567890",
                    "tx_hash": "9f2c...",
                    "amount": "120.00",
                    "status": "unmatched",
                    "created": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: int
    account_id: int | None
    processor: str
    network: str | None
    address: str | None
    tx_hash: str | None
    amount: MoneyStr
    status: str
    created: datetime

    @classmethod
    def of(cls, d: Deposit) -> AdminDepositOut:
        assert d.id is not None
        assert d.created_at is not None
        return cls(
            id=d.id,
            account_id=d.account_id,
            processor=d.processor,
            network=d.network,
            address=d.address,
            tx_hash=d.tx_hash,
            amount=format_usd(d.amount_mills),
            status=d.status,
            created=d.created_at,
        )


class AdminDepositList(BaseModel):
    data: list[AdminDepositOut]
    has_more: bool = False


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="The customer to credit.")


# Overview and audit ---------------------------------------------------------------------------


class DayOut(BaseModel):
    day: date
    deposits: MoneyStr
    bonuses: MoneyStr
    coupons: MoneyStr
    credits: MoneyStr
    debits: MoneyStr
    refunds: MoneyStr
    orders: int = Field(description="Orders placed that day.")
    order_amount: MoneyStr = Field(description="What those orders were debited (negative).")


class OverviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "balances_held": "1234.50",
                    "days": [
                        {
                            "day": "2026-12-01",
                            "deposits": "500.00",
                            "bonuses": "25.00",
                            "coupons": "10.00",
                            "credits": "0.00",
                            "debits": "0.00",
                            "refunds": "6.30",
                            "orders": 48,
                            "order_amount": "-480.00",
                        }
                    ],
                    "orders_by_status": {
                        "awaiting_confirmation": 3,
                        "pending": 5,
                        "in_progress": 2,
                        "completed": 40,
                        "partial": 1,
                        "canceled": 4,
                    },
                    "outbox_waiting": 1,
                    "outbox_oldest": "2026-12-01T09:30:00Z",
                    "live_workers": 2,
                    "address_pool": {"USDT-TRC20": 118},
                    "history_complete": True,
                }
            ]
        }
    )

    balances_held: MoneyStr = Field(
        description="The sum of every balance: what the service owes its customers (equal to the sum of every "
        "payment: `ordersvc ledger verify`)."
    )
    days: list[DayOut] = Field(description="The last 30 days (UTC), oldest first.")
    orders_by_status: dict[str, int]
    outbox_waiting: int
    outbox_oldest: datetime | None
    live_workers: int = Field(description="Workers holding a live lease on an order now.")
    address_pool: dict[str, int] = Field(description="Free deposit addresses per network.")
    history_complete: bool = Field(
        description="False while the first overviews of an old ledger are still summing its history, about a "
        "second of it per read: the ended orders in `orders_by_status` count only the days summed so far. The 30 "
        "days shown are always complete."
    )

    @classmethod
    def of(cls, o: Overview, address_pool: dict[str, int]) -> OverviewOut:
        def money(amounts: dict[str, int], kind: PaymentKind) -> str:
            return format_usd(amounts.get(kind.value, 0))

        days = [
            DayOut(
                day=day,
                deposits=money(t.amounts, PaymentKind.DEPOSIT),
                bonuses=money(t.amounts, PaymentKind.BONUS),
                coupons=money(t.amounts, PaymentKind.COUPON),
                credits=money(t.amounts, PaymentKind.CREDIT),
                debits=money(t.amounts, PaymentKind.DEBIT),
                refunds=money(t.amounts, PaymentKind.REFUND),
                orders=t.counts.get(PaymentKind.ORDER.value, 0),
                order_amount=money(t.amounts, PaymentKind.ORDER),
            )
            for day, t in o.days
        ]
        return cls(
            balances_held=format_usd(o.balances_held_mills),
            days=days,
            orders_by_status={OrderStatus.of(k).value: v for k, v in o.orders_by_status.items()},
            outbox_waiting=o.outbox_waiting,
            outbox_oldest=o.outbox_oldest,
            live_workers=o.live_workers,
            address_pool=address_pool,
            history_complete=o.history_complete,
        )


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1001,
                    "created": "2026-12-01T09:30:00Z",
                    "operator_id": 1,
                    "actor": "ops@example.com",
                    "action": "payment.credit",
                    "object_type": "account",
                    "object_id": "42",
                    "before": {"balance": "25.00"},
                    "after": {"balance": "35.00", "payment_id": 901, "amount": "10.00"},
                    "reason": "goodwill, ticket 4711",
                    "ip": "203.0.113.7",
                }
            ]
        }
    )

    id: int
    created: datetime
    operator_id: int | None
    actor: str
    action: str
    object_type: str | None
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    ip: str | None

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        assert e.id is not None
        assert e.created_at is not None
        return cls(
            id=e.id,
            created=e.created_at,
            operator_id=e.operator_id,
            actor=e.actor,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            before=e.before,
            after=e.after,
            reason=e.reason,
            ip=e.ip,
        )


class AuditList(BaseModel):
    data: list[AuditEntryOut]
    has_more: bool
