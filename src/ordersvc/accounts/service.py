"""Accounts and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.accounts import repository
from ordersvc.accounts.models import Account, ApiKey
from ordersvc.emails import normalize_email
from ordersvc.errors import Conflict, InvalidApiKey, NotFound
from ordersvc.timestamps import utc_now

KEY_SCHEME = "osk_"
# The prefix is the non-secret head of a key ("osk_" + 8 characters, 48 random bits): it finds
# the row; the remaining 256-bit secret is checked against the stored hash.
PREFIX_LENGTH = len(KEY_SCHEME) + 8
_KEY_RE = re.compile(r"^osk_[A-Za-z0-9_-]{8,120}$")
_DUMMY_HASH = hashlib.sha256(b"no such key").digest()
_PREFIX_ATTEMPTS = 5


class AccountNotFound(NotFound):
    message = "No account with that email."


class AccountExists(Conflict):
    code = "account_exists"
    message = "An account with that email already exists."


class ApiKeyNotFound(NotFound):
    message = "No active API key with that prefix."


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def _new_api_key() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(32)


def normalize_account_email(raw: str) -> str:
    # One account per mailbox, whatever the case the operator typed.
    return normalize_email(raw.strip()).lower()


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


async def create_api_key(session: AsyncSession, *, account: Account) -> tuple[ApiKey, str]:
    """A new key for the account; only its hash is stored. Returns the plaintext key once."""
    assert account.id is not None
    for _ in range(_PREFIX_ATTEMPTS):
        api_key = _new_api_key()
        row = await repository.insert_api_key(
            session, account_id=account.id, prefix=api_key[:PREFIX_LENGTH], key_hash=hash_api_key(api_key)
        )
        if row is not None:
            return row, api_key
    raise RuntimeError("could not find a free API key prefix")  # 48 random bits: not in practice


async def revoke_api_key(session: AsyncSession, *, prefix: str, account_id: int | None = None) -> ApiKey:
    """Revoke the active key with this prefix (of this account, when given); a longer string
    (the whole key) names it too."""
    prefix = prefix.strip()[:PREFIX_LENGTH]
    if _KEY_RE.fullmatch(prefix) is None:
        raise ApiKeyNotFound()
    key = await repository.revoke_key(session, prefix, utc_now(), account_id)
    if key is None:
        raise ApiKeyNotFound()
    return key


async def authenticate(session: AsyncSession, *, api_key: object) -> Account:
    """The account owning an active key, or InvalidApiKey.

    The row is found by the key's non-secret prefix; the secret part is compared through its
    hash with a constant-time comparison, also when no row matched.
    """
    if not isinstance(api_key, str) or _KEY_RE.fullmatch(api_key) is None:
        raise InvalidApiKey()
    found = await repository.get_active_key_with_account(session, api_key[:PREFIX_LENGTH])
    expected = found[0].key_hash if found is not None else _DUMMY_HASH
    if not hmac.compare_digest(hash_api_key(api_key), expected) or found is None:
        raise InvalidApiKey()
    return found[1]


async def list_api_keys(session: AsyncSession, *, account_id: int) -> list[ApiKey]:
    """The account's keys, active and revoked, oldest first (prefixes only: keys are not stored)."""
    return await repository.list_keys(session, account_id)
