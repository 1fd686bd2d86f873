"""Table models, imported by `alembic/env.py` so migrations and code share one metadata."""

from ordersvc.accounts.models import Account, ApiKey
from ordersvc.consent.models import RecipientConsent, RecipientMailbox, Suppression
from ordersvc.coupons.models import Coupon, CouponRedemption
from ordersvc.deposits.models import BonusTier, Deposit, DepositAddress
from ordersvc.fulfilment.models import Worker
from ordersvc.idempotency import RequestReplay
from ordersvc.ledger.models import Payment, PaymentKind
from ordersvc.orders.models import IdempotencyKey, Order, OrderEvent, OrderStatus
from ordersvc.outbox.models import OutboxMessage

__all__ = [
    "Account",
    "ApiKey",
    "BonusTier",
    "Coupon",
    "CouponRedemption",
    "Deposit",
    "DepositAddress",
    "IdempotencyKey",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OutboxMessage",
    "Payment",
    "PaymentKind",
    "RecipientConsent",
    "RecipientMailbox",
    "RequestReplay",
    "Suppression",
    "Worker",
]
