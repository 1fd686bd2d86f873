"""Placing orders through the service: ids, prices, one transaction."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.ledger.service import InsufficientBalance
from ordersvc.orders import service as orders
from ordersvc.orders.service import InvalidQuantity
from ordersvc.pagination import PageRequest
from tests.conftest import MakeCustomer
from tests.support import place_as


class TestPublicId:
    def test_public_id_is_8_uppercase_hex(self) -> None:
        ids = {orders.new_public_id() for _ in range(1000)}
        assert all(re.fullmatch(r"[0-9A-F]{8}", i) for i in ids)
        assert len(ids) > 990

    def test_ids_stay_random_across_draws_and_apart_in_a_forked_child(self) -> None:
        ids = [orders.new_public_id() for _ in range(5000)]  # several 4 KiB draws
        assert all(re.fullmatch(r"[0-9A-F]{8}", i) for i in ids)
        assert len(set(ids)) > 4990
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its next ids, then leave at once
            os.write(write, "".join(orders.new_public_id() for _ in range(4)).encode())
            os._exit(0)
        os.close(write)
        child = os.read(read, 64).decode()
        os.waitpid(pid, 0)
        os.close(read)
        parent = "".join(orders.new_public_id() for _ in range(4))
        assert len(child) == 32
        assert child != parent  # not the parent's pool

    async def test_collision_is_retried_with_a_new_id(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch
    ) -> None:
        customer = await make_customer(balance="5")
        first = (await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=500)).order
        fresh = orders.new_public_id()
        generated = iter([first.public_id, first.public_id, fresh])
        monkeypatch.setattr(orders, "new_public_id", lambda: next(generated))
        second = (await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=500)).order
        assert second.public_id == fresh
        async with sessionmaker() as session:
            # One debit per order: the collided attempts left nothing behind.
            assert await ledger.get_balance(session, account_id=customer.account_id) == 4000
            page = await ledger.list_payments(session, account_id=customer.account_id, page=PageRequest())
            assert [e.order_public_id for e in page.items] == [None, first.public_id, fresh]

    async def test_exhausted_retries_change_nothing(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch
    ) -> None:
        customer = await make_customer(balance="5")
        first = (await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=500)).order
        monkeypatch.setattr(orders, "new_public_id", lambda: first.public_id)
        with pytest.raises(RuntimeError, match="no free public order id"):
            await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=500)
        async with sessionmaker() as session:
            assert await ledger.get_balance(session, account_id=customer.account_id) == 4500


class TestPrice:
    @pytest.mark.parametrize("quantity", [500, 501, 999, 1234, 9999, 10000, 33333, 50000])
    async def test_price_is_quantity_over_1000_exactly(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], quantity: int
    ) -> None:
        customer = await make_customer(balance="50")
        order = (await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=quantity)).order
        assert order.price_mills == quantity
        async with sessionmaker() as session:
            assert await ledger.get_balance(session, account_id=customer.account_id) == 50_000 - quantity

    @pytest.mark.parametrize("quantity", [499, 50001, 0, -500])
    async def test_quantity_out_of_range(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], quantity: int
    ) -> None:
        customer = await make_customer(balance="100")
        with pytest.raises(InvalidQuantity):
            await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=quantity)

    async def test_one_mill_short_is_insufficient(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="0.999")
        with pytest.raises(InsufficientBalance):
            await place_as(sessionmaker, customer.account_id, email="a@example.com", quantity=1000)
