"""API keys: random, shown once, stored only as a hash, several per account, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import service as accounts
from ordersvc.accounts.models import ApiKey
from ordersvc.emails import InvalidEmail
from ordersvc.errors import InvalidApiKey
from tests.conftest import MakeCustomer
from tests.support import unique_email


class TestKeys:
    async def test_key_is_high_entropy_and_stored_only_as_a_hash(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        assert re.fullmatch(r"osk_[A-Za-z0-9_-]{43}", customer.api_key)  # 256 random bits
        async with sessionmaker() as session:
            rows = (await session.execute(sa.select(ApiKey).where(ApiKey.account_id == customer.account_id))).scalars()
            (row,) = rows.all()
            stored = (
                await session.execute(sa.text("SELECT api_keys::text FROM api_keys WHERE id = :id"), {"id": row.id})
            ).scalar_one()
        assert row.key_hash == hashlib.sha256(customer.api_key.encode()).digest()
        assert row.prefix == customer.api_key[:12]
        assert customer.api_key[12:] not in stored

    async def test_several_keys_per_account_and_revoking_one_keeps_the_others(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            account = await accounts.get_account_by_email(session, email=customer.email)
            _, second = await accounts.create_api_key(session, account=account)
        assert second != customer.api_key
        async with sessionmaker.begin() as session:
            await accounts.revoke_api_key(session, prefix=customer.api_key[:12])
        async with sessionmaker() as session:
            with pytest.raises(InvalidApiKey):
                await accounts.authenticate(session, api_key=customer.api_key)
            assert (await accounts.authenticate(session, api_key=second)).id == customer.account_id

    async def test_revoking_an_unknown_or_revoked_prefix_is_an_error(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            await accounts.revoke_api_key(session, prefix=customer.api_key[:12])
        for prefix in (customer.api_key[:12], "osk_nothere"):
            async with sessionmaker.begin() as session:
                with pytest.raises(accounts.ApiKeyNotFound):
                    await accounts.revoke_api_key(session, prefix=prefix)


class TestAccounts:
    async def test_account_email_is_normalised_and_unique(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        email = unique_email("Case")
        async with sessionmaker.begin() as session:
            account, _ = await accounts.create_account(session, email=f"  {email.upper()} ")
        assert account.email == email.lower()
        async with sessionmaker.begin() as session:
            with pytest.raises(accounts.AccountExists):
                await accounts.create_account(session, email=email)

    @pytest.mark.parametrize("email", ["", "nope", "a@b", "a@@example.com"])
    async def test_malformed_account_email_is_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], email: str
    ) -> None:
        async with sessionmaker.begin() as session:
            with pytest.raises(InvalidEmail):
                await accounts.create_account(session, email=email)
