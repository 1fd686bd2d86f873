"""Sign-up with a verified email: the account is created without a password, and the holder of
the verification link chooses it; resending the link; following a verification link (also the
one that confirms a new address).

Enumeration: sign-up and resend answer the same whatever the address (the owner of a taken
address is mailed a note instead of a link)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import passwords, repository, throttle, tokens
from ordersvc.accounts.messages import send_account_message
from ordersvc.accounts.models import Account
from ordersvc.accounts.service import normalize_account_email
from ordersvc.accounts.sessions import revoke_sessions
from ordersvc.accounts.throttle import Attempts
from ordersvc.accounts.tokens import InvalidAccountToken, TokenPurpose
from ordersvc.config import Settings
from ordersvc.errors import InvalidParams
from ordersvc.timestamps import utc_now


class PasswordRequired(InvalidParams):
    code = "password_required"
    message = "Choose a password for your account: send it with the token of the link."
    field = "password"


class PasswordNotExpected(InvalidParams):
    code = "password_not_expected"
    message = "This link confirms a new address and sets no password: send the token alone."
    field = "password"


async def signup(session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings) -> None:
    """Create an unverified account with no password and mail its verification link, where the
    password is chosen (`verify_email`). For an address that already has an account, the owner
    gets a note instead; the caller's answer is the same.

    Sign-up takes no password on purpose: anyone can sign up with anyone's address, so a password
    given here may be an intruder's, and verifying the address must not make it usable (account
    pre-hijacking). Only the holder of the link chooses the password."""
    await throttle.count_mail_request(attempts, ip)
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
        existing = await repository.load_account_by_email(session, address, lock=True)
        if existing is not None and existing.email_verified_at is None:
            # Signed up before, not verified yet: the link goes out again (at most once a
            # minute). Nothing else changes: an unauthenticated request never changes an account.
            await _resend_if_due(session, existing, settings)
        else:
            await send_account_message(session, settings, address, "already_registered")
        return
    account = await session.get_one(Account, account_id)
    await _send_verification(session, account, settings)


async def _send_verification(session: AsyncSession, account: Account, settings: Settings) -> None:
    assert account.id is not None
    token = await tokens.issue_token(session, account.id, TokenPurpose.VERIFY_EMAIL)
    await send_account_message(session, settings, account.email, "verify_email", token=token)


async def resend_verification(
    session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings
) -> None:
    """At most one link per RESEND_INTERVAL per account; the answer is the same in every case."""
    account = await tokens.account_asking_for_mail(session, attempts=attempts, ip=ip, email=email)
    if account is None or account.email_verified_at is not None:
        return
    await _resend_if_due(session, account, settings)


async def _resend_if_due(session: AsyncSession, account: Account, settings: Settings) -> None:
    """A new verification link, unless one went out within RESEND_INTERVAL (the account row is
    locked by the caller: two requests at once send one)."""
    assert account.id is not None
    if not await tokens.issued_recently(session, account.id, TokenPurpose.VERIFY_EMAIL):
        await _send_verification(session, account, settings)


async def verify_email(session: AsyncSession, *, token: str, password: str | None) -> Account:
    """Follow a verification link: a new account's (then `password` is required and becomes its
    password, and it can sign in) or the new address of an email change (no `password`; the new
    address replaces the old one and the account's sessions end). A refusal spends nothing."""
    try:
        row = await tokens.use_token(session, token, TokenPurpose.VERIFY_EMAIL)
    except InvalidAccountToken:
        row = await tokens.use_token(session, token, TokenPurpose.CHANGE_EMAIL)
    account = await repository.lock_and_load_account(session, row.account_id)
    if row.purpose == TokenPurpose.VERIFY_EMAIL.value:
        await _verify_new_account(session, account, password)
        return account
    if password is not None:
        raise PasswordNotExpected()
    assert row.new_email is not None
    taken = InvalidAccountToken("That address now belongs to another account.")
    if await repository.load_account_by_email(session, row.new_email) is not None:
        raise taken
    try:
        async with session.begin_nested():  # a sign-up may take the address meanwhile
            account.email = row.new_email
            await session.flush()
    except IntegrityError:
        raise taken from None
    await tokens.spend_tokens(session, row.account_id, TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL)
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
