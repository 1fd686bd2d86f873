"""Self-service accounts: sign-up with a verified email, password and TOTP sign-in, browser
sessions, password reset, email change, and the operators' disable/enable.

Enumeration: sign-up, resend and reset answer the same whatever the address, after the same
work (a password hash at sign-up, whether or not the address is taken); sign-in verifies a hash
also when no account matched, and says only "Invalid email or password." until the password
is right."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ordersvc.accounts import passwords, second_factor, totp
from ordersvc.accounts import service as accounts
from ordersvc.accounts.messages import account_message
from ordersvc.accounts.models import Account, AccountToken, AuthThrottle, BrowserSession, RecoveryCode
from ordersvc.accounts.second_factor import RECOVERY_CODES as RECOVERY_CODES
from ordersvc.accounts.service import AccountNotFound, normalize_account_email
from ordersvc.config import Settings
from ordersvc.emails import InvalidEmail
from ordersvc.errors import InvalidParams, NotFound, ServiceError
from ordersvc.keyring import Keyring, Purpose, keyring
from ordersvc.outbox import service as outbox
from ordersvc.timestamps import utc_now

SESSION_LIFETIME = timedelta(days=14)
# Sessions record when they were last used, at most this often (not a write per request).
LAST_SEEN_RESOLUTION = timedelta(minutes=5)
RESEND_INTERVAL = timedelta(seconds=60)

# Sign-in throttle: failures per key within the window; past the limit, wait for the window.
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_FAILURES = 5
IP_FAILURES = 30
# Requests that send mail to an address the caller names (sign-up, resend, reset), per client
# address and window: nobody floods a mailbox, or keeps a victim's reset link dying.
IP_MAIL_REQUESTS = 20
# Throttle rows past their window deleted per housekeeping round (bounded: one short statement).
THROTTLE_PRUNE_BATCH = 10_000

Attempts = async_sessionmaker[AsyncSession]
"""Where the throttle counts: each attempt is counted in a transaction of its own, committed
before the check it guards (the caller's transaction rolls back when the check fails)."""


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password
    CHANGE_EMAIL = "change_email"


TOKEN_LIFETIME = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=48),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
    TokenPurpose.CHANGE_EMAIL: timedelta(hours=48),
}


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


class WrongPassword(ServiceError):
    status = 403
    code = "wrong_password"
    message = "The current password is not correct."
    field = "current_password"


class EmailNotVerified(ServiceError):
    status = 403
    code = "email_not_verified"
    message = "Verify your email address first: follow the link we sent you, or ask for a new one."


class AccountDisabled(ServiceError):
    status = 403
    code = "account_disabled"
    message = "This account is disabled. Contact support."


class TooManyAttempts(ServiceError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int, what: str = "Too many failed sign-ins.") -> None:
        self.retry_after = retry_after
        super().__init__(f"{what} Try again in {retry_after} s.")


class InvalidAccountToken(ServiceError):
    status = 400
    code = "invalid_token"
    message = "This link is not valid or was already used."


class ExpiredAccountToken(ServiceError):
    status = 410
    code = "expired_token"
    message = "This link has expired. Ask for a new one."


class TotpAlreadyEnabled(ServiceError):
    status = 409
    code = "totp_already_enabled"
    message = "Two-factor sign-in is already on. Turn it off first to enrol a new device."


class TotpNotStarted(ServiceError):
    status = 409
    code = "totp_not_started"
    message = "Start the enrolment first."


class SessionNotFound(NotFound):
    message = "No such session."


class PasswordRequired(InvalidParams):
    code = "password_required"
    message = "Choose a password for your account: send it with the token of the link."
    field = "password"


class PasswordNotExpected(InvalidParams):
    code = "password_not_expected"
    message = "This link confirms a new address and sets no password: send the token alone."
    field = "password"


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


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


# Tokens sent by email -----------------------------------------------------------------------


async def _issue_token(
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
    token = _new_secret()
    session.add(
        AccountToken(
            account_id=account_id,
            purpose=purpose.value,
            token_hash=_hash(token),
            new_email=new_email,
            expires_at=now + TOKEN_LIFETIME[purpose],
        )
    )
    await session.flush()
    return token


async def _spend_tokens(session: AsyncSession, account_id: int, *purposes: TokenPurpose) -> None:
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


async def _use_token(session: AsyncSession, token: str, purpose: TokenPurpose) -> AccountToken:
    """Spend a token (locked: two uses at once cannot both succeed). Its account is locked first,
    as every flow that spends or issues tokens does (password change, reset, verification, mail
    requests): one lock order, so two links of one account followed at once cannot deadlock."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise InvalidAccountToken()
    matching = (col(AccountToken.token_hash) == _hash(token), col(AccountToken.purpose) == purpose.value)
    owner = (await session.execute(sa.select(col(AccountToken.account_id)).where(*matching))).scalar_one_or_none()
    if owner is None:
        raise InvalidAccountToken()
    await _lock_account(session, owner)
    stmt = sa.select(AccountToken).where(*matching).with_for_update().execution_options(populate_existing=True)
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None or row.used_at is not None:
        raise InvalidAccountToken()
    if row.expires_at < utc_now():
        raise ExpiredAccountToken()
    row.used_at = utc_now()
    await session.flush()
    return row


async def _mail(
    session: AsyncSession, settings: Settings, to_email: str, kind: str, *, token: str | None = None
) -> None:
    subject, text, html = account_message(kind, public_url=settings.public_url, token=token)
    await outbox.enqueue(
        session, to_email=to_email, subject=subject, body_text=text, body_html=html, headers={}, purpose="account"
    )


# Sign-up and verification ---------------------------------------------------------------------


async def signup(session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings) -> None:
    """Create an unverified account with no password and mail its verification link, where the
    password is chosen (`verify_email`). For an address that already has an account, the owner
    gets a note instead; the caller's answer is the same.

    Sign-up takes no password on purpose: anyone can sign up with anyone's address, so a password
    given here may be an intruder's, and verifying the address must not make it usable (account
    pre-hijacking). Only the holder of the link chooses the password."""
    await _count_mail_request(attempts, ip)
    address = normalize_account_email(email)
    account_id = (
        await session.execute(
            pg_insert(Account)
            .values(email=address)
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(col(Account.id))
        )
    ).scalar_one_or_none()
    if account_id is None:
        existing = await _account_by_email(session, address, lock=True)
        if existing is not None and existing.email_verified_at is None:
            # Signed up before, not verified yet: the link goes out again (at most once a
            # minute). Nothing else changes: an unauthenticated request never changes an account.
            await _resend_if_due(session, existing, settings)
        else:
            await _mail(session, settings, address, "already_registered")
        return
    account = await session.get_one(Account, account_id)
    await _send_verification(session, account, settings)


async def _send_verification(session: AsyncSession, account: Account, settings: Settings) -> None:
    assert account.id is not None
    token = await _issue_token(session, account.id, TokenPurpose.VERIFY_EMAIL)
    await _mail(session, settings, account.email, "verify_email", token=token)


async def resend_verification(
    session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings
) -> None:
    """At most one link per RESEND_INTERVAL per account; the answer is the same in every case."""
    await _count_mail_request(attempts, ip)
    try:
        address = normalize_account_email(email)
    except InvalidEmail:
        return
    account = await _account_by_email(session, address, lock=True)
    if account is None or account.email_verified_at is not None:
        return
    await _resend_if_due(session, account, settings)


async def _issued_recently(session: AsyncSession, account_id: int, purpose: TokenPurpose) -> bool:
    latest = (
        await session.execute(
            sa.select(sa.func.max(col(AccountToken.created_at))).where(
                col(AccountToken.account_id) == account_id, col(AccountToken.purpose) == purpose.value
            )
        )
    ).scalar_one_or_none()
    return latest is not None and latest > utc_now() - RESEND_INTERVAL


async def _resend_if_due(session: AsyncSession, account: Account, settings: Settings) -> None:
    """A new verification link, unless one went out within RESEND_INTERVAL (the account row is
    locked by the caller: two requests at once send one)."""
    assert account.id is not None
    if not await _issued_recently(session, account.id, TokenPurpose.VERIFY_EMAIL):
        await _send_verification(session, account, settings)


async def verify_email(session: AsyncSession, *, token: str, password: str | None) -> Account:
    """Follow a verification link: a new account's (then `password` is required and becomes its
    password, and it can sign in) or the new address of an email change (no `password`; the new
    address replaces the old one and the account's sessions end). A refusal spends nothing."""
    try:
        row = await _use_token(session, token, TokenPurpose.VERIFY_EMAIL)
    except InvalidAccountToken:
        row = await _use_token(session, token, TokenPurpose.CHANGE_EMAIL)
    account = await _lock_account(session, row.account_id)
    if row.purpose == TokenPurpose.VERIFY_EMAIL.value:
        await _verify_new_account(session, account, password)
        return account
    if password is not None:
        raise PasswordNotExpected()
    assert row.new_email is not None
    taken = InvalidAccountToken("That address now belongs to another account.")
    if await _account_by_email(session, row.new_email) is not None:
        raise taken
    try:
        async with session.begin_nested():  # a sign-up may take the address meanwhile
            account.email = row.new_email
            await session.flush()
    except IntegrityError:
        raise taken from None
    await _spend_tokens(session, row.account_id, TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL)
    await revoke_sessions(session, account_id=row.account_id)
    return account


async def _verify_new_account(session: AsyncSession, account: Account, password: str | None) -> None:
    """The link proves the mailbox, so its holder chooses the password here: whatever password
    the account held before (set by an older version's sign-up, perhaps by someone who typed a
    stranger's address) is replaced, never blessed."""
    assert account.id is not None
    if account.email_verified_at is not None:
        # Verified meanwhile (a reset link verifies too): this link no longer sets a password.
        raise InvalidAccountToken()
    if password is None:
        raise PasswordRequired()
    passwords.check_policy(password, email=account.email)
    account.password_hash = await passwords.hash_password(password)
    account.email_verified_at = utc_now()
    await session.flush()


# Sign-in -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSession:
    account: Account
    token: str  # the cookie's value: shown to the browser only
    csrf: str
    expires_at: datetime


def _throttle_keys(email: str, ip: str) -> list[tuple[str, int]]:
    """The throttle's keys for a sign-in: the account (by its normalised address, so spellings
    of one address share one count) and the client's address."""
    try:
        account = normalize_account_email(email)
    except InvalidEmail:
        account = email.strip().lower()
    return [(f"account:{account}", ACCOUNT_FAILURES), (f"ip:{ip}", IP_FAILURES)]


async def _take_attempt(
    session: AsyncSession, keys: list[tuple[str, int]], *, what: str = "Too many failed sign-ins."
) -> None:
    """Count an attempt against each key before it is made, so parallel guesses cannot all pass
    a check made before any is counted. Raises TooManyAttempts with the wait once a key is over
    its limit in its window; `_attempt_succeeded` takes a successful one back."""
    now = utc_now()
    wait = 0
    for key, limit in keys:
        stale = col(AuthThrottle.window_start) + THROTTLE_WINDOW <= now
        stmt = (
            pg_insert(AuthThrottle)
            .values(key=key, failures=1, window_start=now)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "failures": sa.case((stale, 1), else_=col(AuthThrottle.failures) + 1),
                    "window_start": sa.case((stale, now), else_=col(AuthThrottle.window_start)),
                },
            )
            .returning(col(AuthThrottle.failures), col(AuthThrottle.window_start))
        )
        failures, window_start = (await session.execute(stmt)).one()
        if failures > limit:
            wait = max(wait, int((window_start + THROTTLE_WINDOW - now).total_seconds()) + 1)
    if wait:
        raise TooManyAttempts(wait, what)


async def _count_attempt(
    attempts: Attempts, keys: list[tuple[str, int]], *, what: str = "Too many failed sign-ins."
) -> None:
    """Count an attempt in a transaction of its own, committed at once: a failed check rolls
    back the caller's transaction, never the count."""
    async with attempts.begin() as counting:
        await _take_attempt(counting, keys, what=what)


async def _count_mail_request(attempts: Attempts, ip: str) -> None:
    """Requests that mail an address the caller names, per client address."""
    await _count_attempt(attempts, [(f"mail:{ip}", IP_MAIL_REQUESTS)], what="Too many requests from your address.")


async def _attempt_succeeded(session: AsyncSession, keys: list[tuple[str, int]]) -> None:
    """A right answer: the account's count starts again; the address's attempt is taken back."""
    (account_key, _), *others = keys
    await session.execute(sa.delete(AuthThrottle).where(col(AuthThrottle.key) == account_key))
    for key, _ in others:
        await session.execute(
            sa.update(AuthThrottle)
            .where(col(AuthThrottle.key) == key, col(AuthThrottle.failures) > 0)
            .values(failures=col(AuthThrottle.failures) - 1)
        )


async def prune_throttle(session: AsyncSession, *, limit: int = THROTTLE_PRUNE_BATCH) -> int:
    """Delete up to `limit` throttle rows whose window has passed; how many. Such a row counts
    for nothing (the next attempt starts a new window), but every guessed address and every
    client address leaves one: the mailer's housekeeping calls this each round, so the table
    holds about one window's keys. Rows an attempt is counting right now are skipped."""
    stale = (
        sa.select(col(AuthThrottle.key))
        .where(col(AuthThrottle.window_start) <= utc_now() - THROTTLE_WINDOW)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.execute(
        sa.delete(AuthThrottle).where(col(AuthThrottle.key).in_(stale)).returning(col(AuthThrottle.key))
    )
    return len(deleted.scalars().all())


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
    keys = _throttle_keys(email, ip)
    await _count_attempt(attempts, keys)
    try:
        address = normalize_account_email(email)
    except InvalidEmail:
        address = ""
    account = await _account_by_email(session, address) if address else None
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
    await _attempt_succeeded(session, keys)
    token = _new_secret()
    expires = utc_now() + SESSION_LIFETIME
    session.add(
        BrowserSession(
            account_id=account.id, token_hash=_hash(token), user_agent=user_agent[:300], ip=ip[:64], expires_at=expires
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
                col(BrowserSession.token_hash) == _hash(token),
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


# Passwords and addresses ------------------------------------------------------------------------


async def request_password_reset(
    session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings
) -> None:
    """Mail a reset link to an account with this address; the same answer for any address."""
    await _count_mail_request(attempts, ip)
    try:
        address = normalize_account_email(email)
    except InvalidEmail:
        return
    account = await _account_by_email(session, address, lock=True)
    if account is None or account.id is None or account.disabled_at is not None:
        return
    if await _issued_recently(session, account.id, TokenPurpose.RESET_PASSWORD):
        return  # the link sent within the minute stays the good one
    token = await _issue_token(session, account.id, TokenPurpose.RESET_PASSWORD)
    await _mail(session, settings, account.email, "reset_password", token=token)


async def reset_password(session: AsyncSession, *, token: str, password: str, revoke_api_keys: bool) -> None:
    """Set a new password from a reset link: every session ends (the resetting browser's too),
    and with `revoke_api_keys` every active API key is revoked too. Keys stay by
    default: they are scripts' credentials, and forgetting a password does not leak them (the
    reset form offers the choice for when someone else may have used the account). Following
    the link proves the address, so an unverified account becomes verified."""
    row = await _use_token(session, token, TokenPurpose.RESET_PASSWORD)
    account = await _lock_account(session, row.account_id)
    passwords.check_policy(password, email=account.email)
    account.password_hash = await passwords.hash_password(password)
    account.email_verified_at = account.email_verified_at or utc_now()
    await session.flush()
    # The address is proven now: a verification link still in the mailbox is done with too.
    await _spend_tokens(
        session, row.account_id, TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL, TokenPurpose.VERIFY_EMAIL
    )
    await revoke_sessions(session, account_id=row.account_id)
    if revoke_api_keys:
        await accounts.revoke_all_api_keys(session, account_id=row.account_id)


async def change_password(
    session: AsyncSession,
    *,
    attempts: Attempts,
    account_id: int,
    current_password: str,
    new_password: str,
    keep_session: int | None,
) -> None:
    account = await _lock_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    passwords.check_policy(new_password, email=account.email)
    account.password_hash = await passwords.hash_password(new_password)
    await session.flush()
    await _spend_tokens(session, account_id, TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL)
    await revoke_sessions(session, account_id=account_id, keep=keep_session)


async def request_email_change(
    session: AsyncSession,
    *,
    attempts: Attempts,
    account_id: int,
    current_password: str,
    new_email: str,
    settings: Settings,
) -> None:
    """Mail a link to the new address; the change happens when it is followed. The answer is
    the same whether or not the new address is taken (its owner gets a note instead)."""
    account = await _lock_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    address = normalize_account_email(new_email)
    if address == account.email:
        return
    if await _account_by_email(session, address) is not None:
        await _mail(session, settings, address, "already_registered")
        return
    token = await _issue_token(session, account_id, TokenPurpose.CHANGE_EMAIL, new_email=address)
    await _mail(session, settings, address, "change_email", token=token)


async def _check_current_password(session: AsyncSession, attempts: Attempts, account: Account, password: str) -> None:
    """Current-password checks share the sign-in throttle of the account: a stolen API key or
    session cannot be used to guess the password."""
    keys = [(f"account:{account.email}", ACCOUNT_FAILURES)]
    await _count_attempt(attempts, keys)
    if not await passwords.verify_password(account.password_hash, password):
        raise WrongPassword()
    await _attempt_succeeded(session, keys)


# TOTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str


async def start_totp(
    session: AsyncSession, *, attempts: Attempts, account_id: int, current_password: str, settings: Settings
) -> TotpEnrolment:
    account = await _lock_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    if account.totp_enabled_at is not None:
        raise TotpAlreadyEnabled()
    secret = totp.new_secret()
    account.totp_secret = second_factor.seal_totp_secret(keyring(settings), account_id, secret)
    account.totp_last_step = None
    await session.flush()
    return TotpEnrolment(secret, totp.provisioning_uri(secret, account=account.email))


async def confirm_totp(session: AsyncSession, *, account_id: int, code: str, settings: Settings) -> list[str]:
    """Turn TOTP on with a code from the app; returns the recovery codes, shown this once."""
    account = await _lock_account(session, account_id)
    if account.totp_enabled_at is not None:
        raise TotpAlreadyEnabled()
    keys = keyring(settings)
    opened = second_factor.open_totp_secret(keys, account_id, account.totp_secret) if account.totp_secret else None
    if opened is None:  # not started, or sealed under a secret key no longer configured: start again
        raise TotpNotStarted()
    step = totp.matching_step(opened.secret, code, now=utc_now().timestamp(), after_step=None)
    if step is None:
        raise InvalidTotpCode()
    account.totp_secret = opened.resealed or account.totp_secret
    account.totp_enabled_at = utc_now()
    account.totp_last_step = step
    return await second_factor.new_recovery_codes(session, account_id)


async def disable_totp(session: AsyncSession, *, attempts: Attempts, account_id: int, current_password: str) -> None:
    account = await _lock_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    await session.execute(sa.delete(RecoveryCode).where(col(RecoveryCode.account_id) == account_id))
    await session.flush()


# Operators -----------------------------------------------------------------------------------


async def get_account(session: AsyncSession, *, account_id: int) -> Account:
    return await session.get_one(Account, account_id)


async def list_accounts(session: AsyncSession) -> list[Account]:
    return list((await session.execute(sa.select(Account).order_by(col(Account.id)))).scalars().all())


async def set_disabled(session: AsyncSession, *, email: str, disabled: bool) -> Account:
    """Disable (keys, sessions and worker claims stop at once) or enable an account."""
    account = await _account_by_email(session, normalize_account_email(email), lock=True)
    if account is None:
        raise AccountNotFound()
    account.disabled_at = (account.disabled_at or utc_now()) if disabled else None
    await session.flush()
    if disabled:  # enabling again must not bring back a session (an intruder's, say)
        assert account.id is not None
        await revoke_sessions(session, account_id=account.id)
    return account


# Rows ------------------------------------------------------------------------------------------


async def _account_by_email(session: AsyncSession, email: str, *, lock: bool = False) -> Account | None:
    stmt = sa.select(Account).where(col(Account.email) == email).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _lock_account(session: AsyncSession, account_id: int) -> Account:
    stmt = (
        sa.select(Account)
        .where(col(Account.id) == account_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()
