"""Accounts and their API keys."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ordersvc.accounts import repository
from ordersvc.accounts.callers import Caller
from ordersvc.accounts.models import Account, ApiKey
from ordersvc.bearer_tokens import TokenScheme, hash_token, prefix_of
from ordersvc.emails import normalize_email
from ordersvc.errors import Conflict, InvalidApiKey, NotFound
from ordersvc.timestamps import utc_now

API_KEYS = TokenScheme("osk_")
_PREFIX_ATTEMPTS = 5


class AccountNotFound(NotFound):
    message = "No account with that email."


class AccountExists(Conflict):
    code = "account_exists"
    message = "An account with that email already exists."


class ApiKeyNotFound(NotFound):
    message = "No active API key with that prefix."


def normalize_account_email(raw: str) -> str:
    # One account per mailbox, whatever the case the operator typed.
    return normalize_email(raw.strip()).lower()


async def get_account(session: AsyncSession, *, account_id: int) -> Account:
    return await session.get_one(Account, account_id)


async def list_accounts(session: AsyncSession) -> list[Account]:
    return await repository.list_accounts(session)


async def get_account_by_email(session: AsyncSession, *, email: str) -> Account:
    account = await repository.get_account_by_email(session, normalize_account_email(email))
    if account is None:
        raise AccountNotFound()
    return account


async def create_account(session: AsyncSession, *, email: str) -> tuple[Account, str]:
    """Create an account and its first API key. Returns the plaintext key: shown once."""
    account = await repository.insert_account(session, normalize_account_email(email))
    if account is None:
        raise AccountExists()
    _, api_key = await create_api_key(session, account=account)
    return account, api_key


async def create_api_key(session: AsyncSession, *, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """A new key for the account; only its hash is stored. Returns the plaintext key once."""
    assert account.id is not None
    for _ in range(_PREFIX_ATTEMPTS):
        api_key = API_KEYS.new()
        row = await repository.insert_api_key(
            session, account_id=account.id, prefix=prefix_of(api_key), key_hash=hash_token(api_key), name=name.strip()
        )
        if row is not None:
            return row, api_key
    raise RuntimeError("could not find a free API key prefix")  # 48 random bits: not in practice


async def revoke_api_key(session: AsyncSession, *, prefix: str, account_id: int | None = None) -> ApiKey:
    """Revoke the active key with this prefix (of this account, when given); a longer string
    (the whole key) names it too."""
    prefix = prefix_of(prefix.strip())
    if not API_KEYS.well_formed(prefix):
        raise ApiKeyNotFound()
    key = await repository.revoke_key(session, prefix, utc_now(), account_id)
    if key is None:
        raise ApiKeyNotFound()
    return key


async def revoke_all_api_keys(session: AsyncSession, *, account_id: int) -> int:
    """Revoke every active key of the account (a password reset that asks for it); how many."""
    return await repository.revoke_all_keys(session, account_id, utc_now())


async def authenticate(session: AsyncSession, *, api_key: object) -> Account:
    """The account owning an active key of an enabled account, or InvalidApiKey.

    The row is found by the key's non-secret prefix and its SHA-256, by the same rule as every
    one-statement use case (`repository.CALLER_ACCOUNT`): comparing a digest in SQL tells a
    timing attacker at most how many leading bytes of a SHA-256 matched, which gives no way to
    build a key."""
    if not isinstance(api_key, str) or not API_KEYS.well_formed(api_key):
        raise InvalidApiKey()
    account = await repository.account_of_key(session, prefix_of(api_key), hash_token(api_key))
    if account is None:
        raise InvalidApiKey()
    return account


async def check_caller(engine: AsyncEngine, caller: Caller) -> None:
    """InvalidApiKey unless the caller is valid (`repository.CALLER_ACCOUNT`: an active key of an
    enabled account, or an account already authenticated): for a use case that checks its
    caller in its own statement and refuses a request before sending it, the key's refusal first."""
    await caller_account_id(engine, caller)


async def caller_account_id(engine: AsyncEngine, caller: Caller) -> int:
    """The caller's account (`check_caller`'s rule), or InvalidApiKey."""
    account_id = (await repository.fetch_as(engine, caller, _CALLER))[0][0]
    if account_id is None:
        raise InvalidApiKey()
    return int(account_id)


_CALLER = f"SELECT {repository.CALLER_ACCOUNT}"


async def api_key_is_active(session: AsyncSession, *, account_id: int, prefix: str) -> bool:
    """Whether the account's key with this prefix exists and is not revoked."""
    return any(k.prefix == prefix and k.revoked_at is None for k in await repository.list_keys(session, account_id))


async def list_api_keys(session: AsyncSession, *, account_id: int) -> list[ApiKey]:
    """The account's keys, active and revoked, oldest first (prefixes only: keys are not stored)."""
    return await repository.list_keys(session, account_id)
