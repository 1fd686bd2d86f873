"""Placing and listing orders."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.emails import normalize_email
from ordersvc.errors import ServiceError
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.orders import repository
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY, Order
from ordersvc.pagination import NumberedPage, PageRequest, PageWindow

_PUBLIC_ID_ATTEMPTS = 10


class InvalidQuantity(ServiceError):
    status = 422
    code = "invalid_quantity"
    message = f"Invalid quantity. Range is {MIN_QUANTITY}-{MAX_QUANTITY}."


def price_mills(quantity: int) -> int:
    """price = quantity / 1000 USD, i.e. exactly `quantity` mills."""
    return quantity


def new_public_id() -> str:
    """8 uppercase hex characters from the OS's CSPRNG: not guessable, not sequential."""
    return secrets.token_hex(4).upper()


async def place_order(session: AsyncSession, *, account_id: int, email: str, quantity: int) -> Order:
    """Validate, lock the account, check its balance, insert the order and its debit: all in
    the caller's single transaction. Checks run in the contract's order: email, quantity,
    balance."""
    target = normalize_email(email)
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity()
    price = price_mills(quantity)
    await ledger.lock_for_debit(session, account_id=account_id, amount_mills=price)

    for _ in range(_PUBLIC_ID_ATTEMPTS):
        order = await repository.insert_order(
            session,
            public_id=new_public_id(),
            account_id=account_id,
            email=target,
            quantity=quantity,
            price_mills=price,
        )
        if order is not None:
            break
    else:  # 10 collisions in a row among 2^32 ids: the id space is nearly full
        raise RuntimeError("no free public order id after several attempts")

    assert order.id is not None
    await ledger.post_payment(
        session, account_id=account_id, kind=PaymentKind.ORDER, amount_mills=-price, email=target, order_id=order.id
    )
    return order


async def list_orders(session: AsyncSession, *, account_id: int, page: PageRequest) -> NumberedPage[Order]:
    window = PageWindow.resolve(page, *await repository.count_orders(session, account_id))
    items = await repository.orders_window(session, account_id, window)
    return NumberedPage(items=items, page=window.page, per_page=window.per_page, total=window.total)
