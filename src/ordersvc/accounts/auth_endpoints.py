"""REST: self-service sign-up, sign-in and account security (`/v1/auth/...`, `/v1/account/...`).

Two ways in, one account: scripts send an API key (no CSRF: a browser never adds it by itself);
the dashboard signs in with email and password and gets a session cookie (HttpOnly, SameSite=Lax,
Secure unless configured off for http://localhost), and then sends `X-CSRF-Token` with every
change."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Path, Request, Response, status

from ordersvc.accounts import security, sessions, signup, throttle, tokens
from ordersvc.accounts import service as accounts
from ordersvc.accounts.auth import CSRF_COOKIE, SESSION_COOKIE, AccountDep
from ordersvc.accounts.passwords import WeakPassword
from ordersvc.accounts.schemas import (
    Accepted,
    AccountOut,
    CurrentPasswordIn,
    EmailChangeIn,
    EmailIn,
    LoginIn,
    PasswordChangeIn,
    PasswordResetIn,
    RecoveryCodeList,
    SecurityOut,
    SessionCreated,
    SessionList,
    SessionOut,
    SignupIn,
    TotpCodeIn,
    TotpStarted,
    VerifyEmailIn,
)
from ordersvc.config import Settings
from ordersvc.emails import InvalidEmail
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep

router = APIRouter(prefix="/v1", route_class=GuardedRoute)

SIGNUP_ACCEPTED = "If the address can be used, a message with a link is on its way to it. Follow it to finish."
RESET_ACCEPTED = "If an account has this address, a message with a reset link is on its way to it."


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure_cookies(settings: Settings) -> bool:
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    return settings.public_url.startswith("https://")


def _set_session_cookies(response: Response, settings: Settings, token: str, csrf: str, expires: datetime) -> None:
    secure = _secure_cookies(settings)
    response.set_cookie(SESSION_COOKIE, token, expires=expires, path="/", secure=secure, httponly=True, samesite="lax")
    # Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(CSRF_COOKIE, csrf, expires=expires, path="/", secure=secure, httponly=False, samesite="lax")


def _clear_session_cookies(response: Response, settings: Settings) -> None:
    secure = _secure_cookies(settings)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=False, samesite="lax")


def _attempts(request: Request) -> throttle.Attempts:
    """Where the throttle counts attempts (transactions of their own, not the request's)."""
    attempts: throttle.Attempts = request.app.state.sessionmaker
    return attempts


def _current_session(request: Request) -> int | None:
    session_id: int | None = getattr(request.state, "browser_session_id", None)
    return session_id


# Public: sign-up, verification, sign-in, password reset ----------------------------------------------


@router.post(
    "/auth/signup",
    operation_id="auth_signup",
    tags=["auth"],
    summary="Sign up",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(InvalidEmail, throttle.TooManyAttempts),
    openapi_extra={"security": []},
)
async def auth_signup(body: SignupIn, request: Request, session: SessionDep) -> Accepted:
    """Create an account for an email address. The emailed link verifies the address and is
    where its password is chosen (`POST /v1/auth/verify-email` with the token and the password);
    then it can sign in. The answer is the same whether or not the address already has an
    account (its owner is told by mail instead)."""
    await signup.signup(
        session, attempts=_attempts(request), ip=_ip(request), email=body.email, settings=_settings(request)
    )
    return Accepted(message=SIGNUP_ACCEPTED)


@router.post(
    "/auth/verify-email",
    operation_id="auth_verify_email",
    tags=["auth"],
    summary="Verify an email address",
    responses=problem_responses(
        tokens.InvalidAccountToken,
        tokens.ExpiredAccountToken,
        signup.PasswordRequired,
        signup.PasswordNotExpected,
        WeakPassword,
    ),
    openapi_extra={"security": []},
)
async def auth_verify_email(body: VerifyEmailIn, session: SessionDep) -> AccountOut:
    """Spend the token of a verification link. A new account's link needs `password`: the
    account's password is chosen here, by whoever reads the mailbox (without it: 422
    `password_required`, and the token stays unspent). A new address's link (after an email
    change) takes no password; the account's sessions end. A token works once."""
    account = await signup.verify_email(session, token=body.token, password=body.password)
    return AccountOut.of(account)


@router.post(
    "/auth/resend-verification",
    operation_id="auth_resend_verification",
    tags=["auth"],
    summary="Send the verification link again",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(throttle.TooManyAttempts),
    openapi_extra={"security": []},
)
async def auth_resend_verification(body: EmailIn, request: Request, session: SessionDep) -> Accepted:
    """At most one message a minute per account; the answer is the same for any address."""
    await signup.resend_verification(
        session, attempts=_attempts(request), ip=_ip(request), email=body.email, settings=_settings(request)
    )
    return Accepted(message=SIGNUP_ACCEPTED)


@router.post(
    "/auth/login",
    operation_id="auth_login",
    tags=["auth"],
    summary="Sign in",
    responses=problem_responses(
        sessions.InvalidCredentials,
        sessions.TotpRequired,
        sessions.InvalidTotpCode,
        sessions.EmailNotVerified,
        sessions.AccountDisabled,
        throttle.TooManyAttempts,
    ),
    openapi_extra={"security": []},
)
async def auth_login(body: LoginIn, request: Request, response: Response, session: SessionDep) -> SessionCreated:
    """Check the email and password (and, once enrolled, `totp_code`), and start a browser
    session: a new session id in the `ordersvc_session` cookie every time. Failed attempts are
    throttled per account and per address (429 with `Retry-After`)."""
    settings = _settings(request)
    new = await sessions.login(
        session,
        attempts=_attempts(request),
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        user_agent=request.headers.get("user-agent", ""),
        ip=_ip(request),
        settings=settings,
    )
    _set_session_cookies(response, settings, new.token, new.csrf, new.expires_at)
    return SessionCreated(account=AccountOut.of(new.account), csrf_token=new.csrf, expires=new.expires_at)


@router.post(
    "/auth/password-reset",
    operation_id="auth_password_reset_request",
    tags=["auth"],
    summary="Ask for a password reset link",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(throttle.TooManyAttempts),
    openapi_extra={"security": []},
)
async def auth_password_reset_request(body: EmailIn, request: Request, session: SessionDep) -> Accepted:
    """Mail a reset link (valid 1 hour, once) to the account with this address, if there is one.
    The answer is the same for any address."""
    await security.request_password_reset(
        session, attempts=_attempts(request), ip=_ip(request), email=body.email, settings=_settings(request)
    )
    return Accepted(message=RESET_ACCEPTED)


@router.post(
    "/auth/password-reset/confirm",
    operation_id="auth_password_reset_confirm",
    tags=["auth"],
    summary="Set a new password from a reset link",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(tokens.InvalidAccountToken, tokens.ExpiredAccountToken, WeakPassword),
    openapi_extra={"security": []},
)
async def auth_password_reset_confirm(body: PasswordResetIn, request: Request, session: SessionDep) -> Response:
    """Every browser session of the account ends (this browser's too: its cookies are cleared);
    sign in with the new password. API keys keep working unless `revoke_api_keys` is true: then
    every active key of the account is revoked."""
    await security.reset_password(
        session, token=body.token, password=body.password, revoke_api_keys=body.revoke_api_keys
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookies(response, _settings(request))
    return response


# Signed in: sessions ----------------------------------------------------------------------------------


@router.post(
    "/auth/logout",
    operation_id="auth_logout",
    tags=["auth"],
    summary="Sign out",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def auth_logout(account: AccountDep, request: Request, session: SessionDep) -> Response:
    """End this browser session and clear its cookies (with an API key: nothing to end)."""
    current = _current_session(request)
    if current is not None:
        assert account.id is not None
        await sessions.revoke_session(session, account_id=account.id, session_id=current, missing_ok=True)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookies(response, _settings(request))
    return response


@router.post(
    "/auth/logout-everywhere",
    operation_id="auth_logout_everywhere",
    tags=["auth"],
    summary="Sign out everywhere",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def auth_logout_everywhere(account: AccountDep, request: Request, session: SessionDep) -> Response:
    """End every browser session of the account, this one included. API keys keep working."""
    assert account.id is not None
    await sessions.revoke_sessions(session, account_id=account.id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookies(response, _settings(request))
    return response


@router.get(
    "/auth/sessions",
    operation_id="auth_sessions_list",
    tags=["auth"],
    summary="List your browser sessions",
)
async def auth_sessions_list(account: AccountDep, request: Request, session: SessionDep) -> SessionList:
    """The account's live browser sessions, newest first: when each started and was last used,
    its browser and address, and which one made this request."""
    assert account.id is not None
    current = _current_session(request)
    rows = await sessions.list_sessions(session, account_id=account.id)
    return SessionList(
        data=[
            SessionOut(
                id=row.id or 0,
                created=row.created_at or row.expires_at,
                last_seen=row.last_seen_at or row.expires_at,
                expires=row.expires_at,
                user_agent=row.user_agent,
                ip=row.ip,
                current=row.id == current,
            )
            for row in rows
        ]
    )


@router.delete(
    "/auth/sessions/{session_id}",
    operation_id="auth_sessions_delete",
    tags=["auth"],
    summary="End one browser session",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(sessions.SessionNotFound),
)
async def auth_sessions_delete(
    account: AccountDep, session: SessionDep, session_id: int = Path(ge=1, le=2**63 - 1, description="As listed.")
) -> Response:
    """End one of the account's sessions (a browser left signed in elsewhere); its cookie stops
    working at once."""
    assert account.id is not None
    await sessions.revoke_session(session, account_id=account.id, session_id=session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Signed in: password, email, TOTP -------------------------------------------------------------------


@router.get(
    "/account/security",
    operation_id="account_security_get",
    tags=["account"],
    summary="How your account signs in",
)
async def account_security_get(account: AccountDep, session: SessionDep) -> SecurityOut:
    """Whether the address is verified, a password is set, and two-factor sign-in is on: what the
    settings page shows."""
    assert account.id is not None
    full = await accounts.get_account(session, account_id=account.id)
    return SecurityOut(
        email=full.email,
        email_verified=full.email_verified_at is not None,
        has_password=full.password_hash is not None,
        totp_enabled=full.totp_enabled_at is not None,
    )


@router.post(
    "/account/password",
    operation_id="account_password_change",
    tags=["account"],
    summary="Change your password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        security.WrongPassword, security.PasswordNotSet, throttle.TooManyAttempts, WeakPassword
    ),
)
async def account_password_change(
    body: PasswordChangeIn, account: AccountDep, request: Request, session: SessionDep
) -> Response:
    """Needs the current password; every other session ends (this one stays)."""
    assert account.id is not None
    await security.change_password(
        session,
        attempts=_attempts(request),
        account_id=account.id,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_session=_current_session(request),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/account/email",
    operation_id="account_email_change",
    tags=["account"],
    summary="Change your email address",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(
        security.WrongPassword, security.PasswordNotSet, throttle.TooManyAttempts, InvalidEmail
    ),
)
async def account_email_change(
    body: EmailChangeIn, account: AccountDep, request: Request, session: SessionDep
) -> Accepted:
    """Needs the current password. A link goes to the new address; following it makes the change
    and ends every session."""
    assert account.id is not None
    await security.request_email_change(
        session,
        attempts=_attempts(request),
        account_id=account.id,
        current_password=body.current_password,
        new_email=body.new_email,
        settings=_settings(request),
    )
    return Accepted(message="If the address can be used, a message with a link is on its way to it.")


@router.post(
    "/account/totp",
    operation_id="account_totp_start",
    tags=["account"],
    summary="Start two-factor enrolment",
    responses=problem_responses(
        security.WrongPassword, security.PasswordNotSet, throttle.TooManyAttempts, security.TotpAlreadyEnabled
    ),
)
async def account_totp_start(
    body: CurrentPasswordIn, account: AccountDep, request: Request, session: SessionDep
) -> TotpStarted:
    """A new secret for an authenticator app (RFC 6238). It is on once confirmed with a code."""
    assert account.id is not None
    started = await security.start_totp(
        session,
        attempts=_attempts(request),
        account_id=account.id,
        current_password=body.current_password,
        settings=_settings(request),
    )
    return TotpStarted(secret=started.secret, otpauth_uri=started.uri)


@router.post(
    "/account/totp/confirm",
    operation_id="account_totp_confirm",
    tags=["account"],
    summary="Confirm two-factor enrolment",
    responses=problem_responses(security.TotpAlreadyEnabled, security.TotpNotStarted, sessions.InvalidTotpCode),
)
async def account_totp_confirm(
    body: TotpCodeIn, account: AccountDep, request: Request, session: SessionDep
) -> RecoveryCodeList:
    """Turn two-factor sign-in on with a code from the app; the recovery codes are shown once."""
    assert account.id is not None
    codes = await security.confirm_totp(session, account_id=account.id, code=body.code, settings=_settings(request))
    return RecoveryCodeList(recovery_codes=codes)


@router.post(
    "/account/totp/disable",
    operation_id="account_totp_disable",
    tags=["account"],
    summary="Turn two-factor sign-in off",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(security.WrongPassword, security.PasswordNotSet, throttle.TooManyAttempts),
)
async def account_totp_disable(
    body: CurrentPasswordIn, account: AccountDep, request: Request, session: SessionDep
) -> Response:
    """Needs the current password. The secret and the recovery codes are deleted; sign-in asks for
    the password only."""
    assert account.id is not None
    await security.disable_totp(
        session, attempts=_attempts(request), account_id=account.id, current_password=body.current_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
