"""One-time tokens sent by email: the links that verify an address, reset a password or confirm
a new address. Only their SHA-256 is stored (as for browser sessions, which share the helpers)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import repository, throttle
from ordersvc.accounts.models import Account, AccountToken
from ordersvc.accounts.service import normalize_account_email
from ordersvc.emails import InvalidEmail
from ordersvc.errors import ServiceError
from ordersvc.timestamps import utc_now

# At most one link per purpose and account this often (resend, reset).
RESEND_INTERVAL = timedelta(seconds=60)


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password
    CHANGE_EMAIL = "change_email"


TOKEN_LIFETIME = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=48),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
    TokenPurpose.CHANGE_EMAIL: timedelta(hours=48),
}


class InvalidAccountToken(ServiceError):
    status = 400
    code = "invalid_token"
    message = "This link is not valid or was already used."


class ExpiredAccountToken(ServiceError):
    status = 410
    code = "expired_token"
    message = "This link has expired. Ask for a new one."


def hash_secret(value: str) -> bytes:
    """How a token or a session cookie is stored: its SHA-256 (the value itself never is)."""
    return hashlib.sha256(value.encode()).digest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def issue_token(
    session: AsyncSession, account_id: int, purpose: TokenPurpose, *, new_email: str | None = None
) -> str:
    """A new one-time token; earlier unused tokens of the same purpose stop working."""
    now = utc_now()
    await session.execute(
        sa.update(AccountToken)
        .where(
            col(AccountToken.account_id) == account_id,
            col(AccountToken.purpose) == purpose.value,
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=now)
    )
    token = new_secret()
    session.add(
        AccountToken(
            account_id=account_id,
            purpose=purpose.value,
            token_hash=hash_secret(token),
            new_email=new_email,
            expires_at=now + TOKEN_LIFETIME[purpose],
        )
    )
    await session.flush()
    return token


async def spend_tokens(session: AsyncSession, account_id: int, *purposes: TokenPurpose) -> None:
    """Links already mailed for these purposes stop working (after a password or address change:
    a link in a mailbox the owner no longer trusts must not outlive it)."""
    await session.execute(
        sa.update(AccountToken)
        .where(
            col(AccountToken.account_id) == account_id,
            col(AccountToken.purpose).in_([p.value for p in purposes]),
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=utc_now())
    )


async def use_token(session: AsyncSession, token: str, purpose: TokenPurpose) -> AccountToken:
    """Spend a token (locked: two uses at once cannot both succeed). Its account is locked first,
    as every flow that spends or issues tokens does (password change, reset, verification, mail
    requests): one lock order, so two links of one account followed at once cannot deadlock."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise InvalidAccountToken()
    matching = (col(AccountToken.token_hash) == hash_secret(token), col(AccountToken.purpose) == purpose.value)
    owner = (await session.execute(sa.select(col(AccountToken.account_id)).where(*matching))).scalar_one_or_none()
    if owner is None:
        raise InvalidAccountToken()
    await repository.lock_and_load_account(session, owner)
    stmt = sa.select(AccountToken).where(*matching).with_for_update().execution_options(populate_existing=True)
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None or row.used_at is not None:
        raise InvalidAccountToken()
    if row.expires_at < utc_now():
        raise ExpiredAccountToken()
    row.used_at = utc_now()
    await session.flush()
    return row


async def issued_recently(session: AsyncSession, account_id: int, purpose: TokenPurpose) -> bool:
    """Whether a token of this purpose went out within RESEND_INTERVAL."""
    latest = (
        await session.execute(
            sa.select(sa.func.max(col(AccountToken.created_at))).where(
                col(AccountToken.account_id) == account_id, col(AccountToken.purpose) == purpose.value
            )
        )
    ).scalar_one_or_none()
    return latest is not None and latest > utc_now() - RESEND_INTERVAL


async def account_asking_for_mail(
    session: AsyncSession, *, attempts: throttle.Attempts, ip: str, email: str
) -> Account | None:
    """A request to mail a link to `email` (reset, verification): counted against the client's
    address first, then the account with that address, its row locked (two requests at once
    send one link); None for an address that is not one or has no account, which the caller
    answers as any other (no enumeration)."""
    await throttle.count_mail_request(attempts, ip)
    try:
        address = normalize_account_email(email)
    except InvalidEmail:
        return None
    return await repository.load_account_by_email(session, address, lock=True)
