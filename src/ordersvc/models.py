"""Table models, imported by `alembic/env.py` so migrations and code share one metadata."""

from ordersvc.accounts.models import Account, ApiKey
from ordersvc.ledger.models import Payment, PaymentKind
from ordersvc.orders.models import IdempotencyKey, Order, OrderStatus

__all__ = ["Account", "ApiKey", "IdempotencyKey", "Order", "OrderStatus", "Payment", "PaymentKind"]
