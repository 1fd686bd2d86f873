from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from ordersvc.accounts.callers import ApiKeyCaller, Caller
from ordersvc.accounts.models import Account, ApiKey
from ordersvc.bearer_tokens import hash_token, prefix_of
from ordersvc.db import fetch_autocommit


async def get_account_by_email(session: AsyncSession, email: str) -> Account | None:
    result = await session.execute(sa.select(Account).where(col(Account.email) == email))
    return result.scalar_one_or_none()


async def insert_account(session: AsyncSession, email: str) -> Account | None:
    """Insert unless the email is taken (then None): concurrent sign-ups never raise. An
    operator vouches for the address: the account is verified."""
    stmt = (
        pg_insert(Account)
        .values(email=email, email_verified_at=sa.func.now())
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(col(Account.id))
    )
    account_id = (await session.execute(stmt)).scalar_one_or_none()
    if account_id is None:
        return None
    return await session.get_one(Account, account_id)


async def insert_api_key(
    session: AsyncSession, *, account_id: int, prefix: str, key_hash: bytes, name: str = ""
) -> ApiKey | None:
    """Insert unless the prefix is taken (then None)."""
    stmt = (
        pg_insert(ApiKey)
        .values(account_id=account_id, prefix=prefix, key_hash=key_hash, name=name)
        .on_conflict_do_nothing(index_elements=["prefix"])
        .returning(col(ApiKey.id))
    )
    key_id = (await session.execute(stmt)).scalar_one_or_none()
    if key_id is None:
        return None
    return await session.get_one(ApiKey, key_id)


_KEY_ACCOUNT = (
    "SELECT a.id, a.email, a.balance_mills, a.payments_count, a.orders_count, a.created_at"
    " FROM accounts a WHERE a.id = ordersvc_caller_account($1::text, $2::bytea, NULL)"
)


CALLER_ACCOUNT = "ordersvc_caller_account($1::text, $2::bytea, $3::bigint)"
"""SQL: the account a statement serves, from its first three parameters (`caller_arguments`), by
the database's `ordersvc_caller_account` (`accounts/sql/`), which the order statement uses too:
the account of an API key, checked there by its prefix ($1) and SHA-256 ($2), or NULL when the
key is not valid; or an account already authenticated ($3: a browser session's, checked by the
caller, or an operator's). A read that names its caller this way checks the key in the same statement as its
work: no transaction, one round trip."""

CALLER_PARAMETERS = 3


def caller_arguments(caller: Caller) -> tuple[str | None, bytes | None, int | None]:
    """The parameters of `CALLER_ACCOUNT` for this caller."""
    if isinstance(caller, ApiKeyCaller):
        return prefix_of(caller.key), hash_token(caller.key), None
    return None, None, caller.account_id


Reader = AsyncEngine | AsyncSession
"""Where a read runs: a statement of its own (an engine: autocommit, no BEGIN and COMMIT round
trips) or the caller's transaction (a session)."""


async def fetch_as(reader: Reader, caller: Caller, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of a statement whose first parameters name its caller (`CALLER_ACCOUNT`), sent
    as plain SQL: no statement to build, no ORM load."""
    arguments = (*caller_arguments(caller), *args)
    if isinstance(reader, AsyncEngine):
        return await fetch_autocommit(reader, sql, *arguments)
    connection = await reader.connection()
    return [tuple(row) for row in (await connection.exec_driver_sql(sql, arguments)).all()]


async def account_of_key(session: AsyncSession, prefix: str, key_hash: bytes) -> Account | None:
    """The account of the active key with this prefix and SHA-256 (`CALLER_ACCOUNT`'s rule, the
    database's `ordersvc_caller_account`). Every authenticated request runs this, so it is sent
    as plain SQL: no statement to build, no ORM load (the account is a detached snapshot of its
    row)."""
    connection = await session.connection()
    row = (await connection.exec_driver_sql(_KEY_ACCOUNT, (prefix, key_hash))).one_or_none()
    if row is None:
        return None
    account_id, email, balance, payments, orders, created_at = tuple(row)
    return Account(
        id=account_id,
        email=email,
        balance_mills=balance,
        payments_count=payments,
        orders_count=orders,
        created_at=created_at,
    )


async def revoke_key(session: AsyncSession, prefix: str, at: datetime, account_id: int | None) -> ApiKey | None:
    stmt = (
        sa.update(ApiKey)
        .where(col(ApiKey.prefix) == prefix, col(ApiKey.revoked_at).is_(None))
        .where(sa.true() if account_id is None else col(ApiKey.account_id) == account_id)
        .values(revoked_at=at)
        .returning(ApiKey)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_all_keys(session: AsyncSession, account_id: int, at: datetime) -> int:
    stmt = (
        sa.update(ApiKey)
        .where(col(ApiKey.account_id) == account_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=at)
        .returning(col(ApiKey.id))
    )
    return len((await session.execute(stmt)).scalars().all())


async def list_keys(session: AsyncSession, account_id: int) -> list[ApiKey]:
    stmt = sa.select(ApiKey).where(col(ApiKey.account_id) == account_id).order_by(col(ApiKey.id))
    return list((await session.execute(stmt)).scalars().all())


async def lock_account(session: AsyncSession, account_id: int) -> bool:
    """Lock the account row (FOR NO KEY UPDATE) until the transaction ends; False if none."""
    stmt = sa.select(col(Account.id)).where(col(Account.id) == account_id).with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def load_account_by_email(session: AsyncSession, email: str, *, lock: bool = False) -> Account | None:
    """The account with this (normalised) address, read fresh from its row (never a stale copy
    from the session); with `lock`, locked as `lock_account` does."""
    stmt = sa.select(Account).where(col(Account.email) == email).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_and_load_account(session: AsyncSession, account_id: int) -> Account:
    """Lock the account row (as `lock_account` does) and return it, read fresh from the row."""
    stmt = (
        sa.select(Account)
        .where(col(Account.id) == account_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def list_accounts(session: AsyncSession) -> list[Account]:
    return list((await session.execute(sa.select(Account).order_by(col(Account.id)))).scalars().all())
