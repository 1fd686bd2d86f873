"""Browser sessions: sign-in with the password (and the second factor once enrolled), the account
of a session cookie, its CSRF token, and listing and ending sessions.

Enumeration: sign-in verifies a hash also when no account matched, and says only "Invalid email
or password." until the password is right."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import passwords, repository, second_factor, throttle, totp
from ordersvc.accounts.models import Account, BrowserSession
from ordersvc.accounts.service import normalize_account_email
from ordersvc.accounts.throttle import Attempts
from ordersvc.accounts.tokens import hash_secret, new_secret
from ordersvc.config import Settings
from ordersvc.emails import InvalidEmail
from ordersvc.errors import NotFound, ServiceError
from ordersvc.keyring import Keyring, Purpose, keyring
from ordersvc.timestamps import utc_now

SESSION_LIFETIME = timedelta(days=14)
# Sessions record when they were last used, at most this often (not a write per request).
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


class InvalidCredentials(ServiceError):
    status = 401
    code = "invalid_credentials"
    message = "Invalid email or password."


class TotpRequired(ServiceError):
    status = 401
    code = "totp_required"
    message = "Enter the 6-digit code from your authenticator app, or a recovery code."


class InvalidTotpCode(ServiceError):
    status = 401
    code = "invalid_totp_code"
    message = "That code is not valid (each code works once)."


class EmailNotVerified(ServiceError):
    status = 403
    code = "email_not_verified"
    message = "Verify your email address first: follow the link we sent you, or ask for a new one."


class AccountDisabled(ServiceError):
    status = 403
    code = "account_disabled"
    message = "This account is disabled. Contact support."


class SessionNotFound(NotFound):
    message = "No such session."


def csrf_token(keys: Keyring, session_token: str) -> str:
    """The CSRF token of a session: bound to it (HMAC under the service's CSRF key), so a cookie an
    attacker planted cannot come with a token that matches."""
    return keys.sign(Purpose.CSRF, b"csrf:" + session_token.encode()).hex()


def csrf_token_matches(keys: Keyring, session_token: str, sent: str) -> bool:
    """Whether `sent` is the session's CSRF token, under any configured secret key."""
    try:
        signature = bytes.fromhex(sent) if len(sent) == 64 else b""
    except ValueError:
        return False
    return bool(signature) and keys.verify(Purpose.CSRF, b"csrf:" + session_token.encode(), signature)


# Sign-in -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSession:
    account: Account
    token: str  # the cookie's value: shown to the browser only
    csrf: str
    expires_at: datetime


async def login(
    session: AsyncSession,
    *,
    attempts: Attempts,
    email: str,
    password: str,
    totp_code: str | None,
    user_agent: str,
    ip: str,
    settings: Settings,
) -> NewSession:
    """Check the password (and the second factor once enrolled) and open a new session: a new
    random id every time, whatever cookie came with the request (no session fixation). Failed
    attempts are throttled per account and per client address."""
    keys = throttle.sign_in_keys(email, ip)
    await throttle.count_attempt(attempts, keys)
    try:
        address = normalize_account_email(email)
    except InvalidEmail:
        address = ""
    account = await repository.load_account_by_email(session, address) if address else None
    if not await passwords.verify_password(account.password_hash if account else None, password) or account is None:
        raise InvalidCredentials()
    if account.disabled_at is not None:
        raise AccountDisabled()
    if account.email_verified_at is None:
        raise EmailNotVerified()
    if account.totp_enabled_at is not None:
        if not totp_code:
            raise TotpRequired()
        await _check_second_factor(session, account, totp_code, keyring(settings))
    assert account.id is not None
    await throttle.attempt_succeeded(session, keys)
    token = new_secret()
    expires = utc_now() + SESSION_LIFETIME
    session.add(
        BrowserSession(
            account_id=account.id,
            token_hash=hash_secret(token),
            user_agent=user_agent[:300],
            ip=ip[:64],
            expires_at=expires,
        )
    )
    await session.flush()
    return NewSession(account, token, csrf_token(keyring(settings), token), expires)


async def _check_second_factor(session: AsyncSession, account: Account, code: str, keys: Keyring) -> None:
    assert account.id is not None
    assert account.totp_secret is not None
    code = code.strip()
    opened = second_factor.open_totp_secret(keys, account.id, account.totp_secret)  # None: recovery codes only
    now = utc_now().timestamp()
    step = totp.matching_step(opened.secret, code, now=now, after_step=account.totp_last_step) if opened else None
    if opened is not None and step is not None:
        # Atomic: of two sign-ins with the same code at once, one moves the step and one fails.
        moved = (
            await session.execute(
                sa.update(Account)
                .where(
                    col(Account.id) == account.id,
                    sa.or_(col(Account.totp_last_step).is_(None), col(Account.totp_last_step) < step),
                )
                .values(totp_last_step=step)
                .returning(col(Account.id))
            )
        ).scalar_one_or_none()
        if moved is None:
            raise InvalidTotpCode()
        await second_factor.store_resealed(session, account.id, account.totp_secret, opened)
        return
    if not await second_factor.use_recovery_code(session, account.id, code):
        raise InvalidTotpCode()


# Sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionAuth:
    account: Account
    session_id: int


async def authenticate_session(session: AsyncSession, *, token: str) -> SessionAuth | None:
    """The account of a live session cookie (not expired, revoked or disabled)."""
    if not 20 <= len(token) <= 100:
        return None
    now = utc_now()
    row = (
        await session.execute(
            sa.select(BrowserSession, Account)
            .join(Account, col(Account.id) == col(BrowserSession.account_id))
            .where(
                col(BrowserSession.token_hash) == hash_secret(token),
                col(BrowserSession.revoked_at).is_(None),
                col(BrowserSession.expires_at) > now,
                col(Account.disabled_at).is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    browser, account = row
    assert browser.id is not None
    assert browser.last_seen_at is not None
    if browser.last_seen_at < now - LAST_SEEN_RESOLUTION:
        await session.execute(
            sa.update(BrowserSession).where(col(BrowserSession.id) == browser.id).values(last_seen_at=now)
        )
    return SessionAuth(account, browser.id)


async def list_sessions(session: AsyncSession, *, account_id: int) -> list[BrowserSession]:
    """The account's live sessions, newest first."""
    stmt = (
        sa.select(BrowserSession)
        .where(
            col(BrowserSession.account_id) == account_id,
            col(BrowserSession.revoked_at).is_(None),
            col(BrowserSession.expires_at) > utc_now(),
        )
        .order_by(col(BrowserSession.id).desc())
    )
    return list((await session.execute(stmt)).scalars().all())


async def revoke_session(session: AsyncSession, *, account_id: int, session_id: int, missing_ok: bool = False) -> None:
    stmt = (
        sa.update(BrowserSession)
        .where(
            col(BrowserSession.id) == session_id,
            col(BrowserSession.account_id) == account_id,
            col(BrowserSession.revoked_at).is_(None),
        )
        .values(revoked_at=utc_now())
        .returning(col(BrowserSession.id))
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None and not missing_ok:
        raise SessionNotFound()


async def revoke_sessions(session: AsyncSession, *, account_id: int, keep: int | None = None) -> int:
    """End every session of the account (but `keep`); how many ended."""
    stmt = (
        sa.update(BrowserSession)
        .where(col(BrowserSession.account_id) == account_id, col(BrowserSession.revoked_at).is_(None))
        .values(revoked_at=utc_now())
        .returning(col(BrowserSession.id))
    )
    if keep is not None:
        stmt = stmt.where(col(BrowserSession.id) != keep)
    return len((await session.execute(stmt)).scalars().all())
