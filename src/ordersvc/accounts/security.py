"""Account security: password reset and change, email change, two-factor sign-in (TOTP) enrolment,
and the operators' disable/enable. A signed-in change asks for the current password again
(counted by the account's sign-in throttle); a forgotten password is reset by a mailed link.

Enumeration: a reset request answers the same whatever the address."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import passwords, repository, second_factor, throttle, tokens, totp
from ordersvc.accounts import service as accounts
from ordersvc.accounts.messages import send_account_message
from ordersvc.accounts.models import Account, RecoveryCode
from ordersvc.accounts.service import AccountNotFound, normalize_account_email
from ordersvc.accounts.sessions import InvalidTotpCode, revoke_sessions
from ordersvc.accounts.throttle import Attempts
from ordersvc.accounts.tokens import TokenPurpose
from ordersvc.config import Settings
from ordersvc.errors import ServiceError
from ordersvc.keyring import keyring
from ordersvc.timestamps import utc_now


class WrongPassword(ServiceError):
    status = 403
    code = "wrong_password"
    message = "The current password is not correct."
    field = "current_password"


class PasswordNotSet(ServiceError):
    status = 409
    code = "password_not_set"
    message = (
        "This account has no password yet (it signs in with an API key): set one first with the emailed link "
        "(POST /v1/auth/password-reset)."
    )


class TotpAlreadyEnabled(ServiceError):
    status = 409
    code = "totp_already_enabled"
    message = "Two-factor sign-in is already on. Turn it off first to enrol a new device."


class TotpNotStarted(ServiceError):
    status = 409
    code = "totp_not_started"
    message = "Start the enrolment first."


# Passwords and addresses ------------------------------------------------------------------------


async def request_password_reset(
    session: AsyncSession, *, attempts: Attempts, ip: str, email: str, settings: Settings
) -> None:
    """Mail a reset link to an account with this address; the same answer for any address."""
    account = await tokens.account_asking_for_mail(session, attempts=attempts, ip=ip, email=email)
    if account is None or account.id is None or account.disabled_at is not None:
        return
    if await tokens.issued_recently(session, account.id, TokenPurpose.RESET_PASSWORD):
        return  # the link sent within the minute stays the good one
    token = await tokens.issue_token(session, account.id, TokenPurpose.RESET_PASSWORD)
    await send_account_message(session, settings, account.email, "reset_password", token=token)


async def reset_password(session: AsyncSession, *, token: str, password: str, revoke_api_keys: bool) -> None:
    """Set a new password from a reset link: every session ends (the resetting browser's too),
    and with `revoke_api_keys` every active API key is revoked too. Keys stay by
    default: they are scripts' credentials, and forgetting a password does not leak them (the
    reset form offers the choice for when someone else may have used the account). Following
    the link proves the address, so an unverified account becomes verified."""
    row = await tokens.use_token(session, token, TokenPurpose.RESET_PASSWORD)
    account = await repository.lock_and_load_account(session, row.account_id)
    passwords.check_policy(password, email=account.email)
    account.password_hash = await passwords.hash_password(password)
    account.email_verified_at = account.email_verified_at or utc_now()
    await session.flush()
    # The address is proven now: a verification link still in the mailbox is done with too.
    await tokens.spend_tokens(
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
    account = await repository.lock_and_load_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    passwords.check_policy(new_password, email=account.email)
    account.password_hash = await passwords.hash_password(new_password)
    await session.flush()
    await tokens.spend_tokens(session, account_id, TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL)
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
    account = await repository.lock_and_load_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    address = normalize_account_email(new_email)
    if address == account.email:
        return
    if await repository.load_account_by_email(session, address) is not None:
        await send_account_message(session, settings, address, "already_registered")
        return
    token = await tokens.issue_token(session, account_id, TokenPurpose.CHANGE_EMAIL, new_email=address)
    await send_account_message(session, settings, address, "change_email", token=token)


async def _check_current_password(session: AsyncSession, attempts: Attempts, account: Account, password: str) -> None:
    """Current-password checks share the sign-in throttle of the account: a stolen API key or
    session cannot be used to guess the password."""
    if account.password_hash is None:
        # Nothing to guess, so no attempt is counted: the account is told how to get a password.
        raise PasswordNotSet()
    keys = throttle.account_keys(account.email)
    await throttle.count_attempt(attempts, keys)
    if not await passwords.verify_password(account.password_hash, password):
        raise WrongPassword()
    await throttle.attempt_succeeded(session, keys)


# TOTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str


async def start_totp(
    session: AsyncSession, *, attempts: Attempts, account_id: int, current_password: str, settings: Settings
) -> TotpEnrolment:
    account = await repository.lock_and_load_account(session, account_id)
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
    account = await repository.lock_and_load_account(session, account_id)
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
    account = await repository.lock_and_load_account(session, account_id)
    await _check_current_password(session, attempts, account, current_password)
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    await session.execute(sa.delete(RecoveryCode).where(col(RecoveryCode.account_id) == account_id))
    await session.flush()


# Operators -----------------------------------------------------------------------------------


async def set_disabled(session: AsyncSession, *, email: str, disabled: bool) -> Account:
    """Disable (keys, sessions and worker claims stop at once) or enable an account."""
    account = await repository.load_account_by_email(session, normalize_account_email(email), lock=True)
    if account is None:
        raise AccountNotFound()
    account.disabled_at = (account.disabled_at or utc_now()) if disabled else None
    await session.flush()
    if disabled:  # enabling again must not bring back a session (an intruder's, say)
        assert account.id is not None
        await revoke_sessions(session, account_id=account.id)
    return account
