"""Table models, imported by `alembic/env.py` so migrations and code share one metadata."""

from ordersvc.accounts.models import Account, ApiKey
from ordersvc.admin.overview import DailyTotal, DayClosed
from ordersvc.audit.models import AuditEntry
from ordersvc.consent.models import RecipientConsent, RecipientMailbox, Suppression
from ordersvc.coupons.models import Coupon, CouponRedemption
from ordersvc.deposits.models import BonusTier, Deposit, DepositAddress, ProcessorEvent
from ordersvc.events.models import BalanceAlert, Event, OrderProgressMark
from ordersvc.fulfilment.models import Worker
from ordersvc.idempotency import RequestReplay
from ordersvc.ledger.models import Payment, PaymentKind
from ordersvc.operators.models import Operator, OperatorSession, OperatorToken
from ordersvc.orders.models import IdempotencyKey, Order, OrderEvent, OrderStatus
from ordersvc.outbox.models import OutboxMessage
from ordersvc.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookDispatch, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "AuditEntry",
    "BalanceAlert",
    "BonusTier",
    "Coupon",
    "CouponRedemption",
    "DailyTotal",
    "DayClosed",
    "Deposit",
    "DepositAddress",
    "Event",
    "IdempotencyKey",
    "Operator",
    "OperatorSession",
    "OperatorToken",
    "Order",
    "OrderEvent",
    "OrderProgressMark",
    "OrderStatus",
    "OutboxMessage",
    "Payment",
    "PaymentKind",
    "ProcessorEvent",
    "RecipientConsent",
    "RecipientMailbox",
    "RequestReplay",
    "Suppression",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDispatch",
    "WebhookEndpoint",
    "Worker",
]
