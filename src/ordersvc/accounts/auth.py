"""`AccountDep`: the account whose API key a REST request carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.accounts import service as accounts
from ordersvc.accounts import sessions
from ordersvc.accounts.callers import AccountCaller, ApiKeyCaller, Caller
from ordersvc.accounts.models import Account
from ordersvc.accounts.service import API_KEYS
from ordersvc.errors import InvalidApiKey, ServiceError
from ordersvc.keyring import keyring
from ordersvc.ops import ratelimit
from ordersvc.request_db import SessionDep

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="`Authorization: Bearer osk_...`: an API key from `ordersvc accounts create` or `POST /v1/api-keys`.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader", description="The same API key, in `X-API-Key`."
)


SESSION_COOKIE = "ordersvc_session"
CSRF_COOKIE = "ordersvc_csrf"
CSRF_HEADER = "X-CSRF-Token"
session_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="sessionCookie",
    description="A browser session from `POST /v1/auth/login` (HttpOnly). Requests that change anything "
    f"must also send `{CSRF_HEADER}` with the value of the `{CSRF_COOKIE}` cookie.",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

UNAUTHORIZED_DETAIL = "Missing or invalid API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."


class CsrfFailed(ServiceError):
    status = 403
    code = "csrf_failed"
    message = f"Missing or wrong {CSRF_HEADER}: send the value of the {CSRF_COOKIE} cookie with every change."


async def key_from_request(request: Request) -> str | None:
    """The key of either scheme, as `current_account` reads it."""
    bearer = await bearer_scheme(request)
    return bearer.credentials if bearer else await api_key_scheme(request)


async def request_has_valid_key(request: Request) -> bool:
    """For error handlers that run before the route's dependencies (body validation): does the
    request carry a valid credential for its route (a worker token under /v1/fulfilment, a
    customer key elsewhere)?"""
    from ordersvc.fulfilment import service as fulfilment

    async with request.app.state.sessionmaker() as session:
        try:
            if request.url.path.startswith("/v1/admin/"):
                from ordersvc.operators import service as operators

                cookie = request.cookies.get("ordersvc_operator")
                settings = request.app.state.settings
                found = (
                    await operators.authenticate_session(session, token=cookie, settings=settings) if cookie else None
                )
                return found is not None
            if request.url.path.startswith("/v1/fulfilment/"):
                bearer = await bearer_scheme(request)
                await fulfilment.authenticate(session, token=bearer.credentials if bearer else None)
            else:
                key = await key_from_request(request)
                cookie = request.cookies.get(SESSION_COOKIE)
                if key is None and cookie is not None:
                    return await sessions.authenticate_session(session, token=cookie) is not None
                await accounts.authenticate(session, api_key=key)
        except ServiceError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents, not checked yet: an API key (either header) or a session cookie."""

    key: str | None
    cookie: str | None


async def request_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    cookie: Annotated[str | None, Depends(session_cookie_scheme)],
) -> Credentials:
    """The three schemes are dependencies (not `key_from_request`) so that OpenAPI declares them."""
    return Credentials(bearer.credentials if bearer else api_key, cookie)


CredentialsDep = Annotated[Credentials, Depends(request_credentials)]


async def authenticate(request: Request, session: AsyncSession, credentials: Credentials) -> Account:
    """The account of the request's API key or, without one, of its browser session (then a
    change also needs the CSRF header); then the rate limit of either."""
    key = credentials.key
    if key is None and credentials.cookie is not None:
        return await _session_account(request, session, credentials.cookie)
    try:
        account = await accounts.authenticate(session, api_key=key)
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    assert key is not None
    await ratelimit.enforce_key(request, key)
    return account


async def caller_of(request: Request, credentials: Credentials) -> Caller:
    """For a use case that checks its caller in its own statement (an order): the request's API
    key, not checked yet, or the account of its browser session (checked here, with the CSRF
    header). Either way the rate limit first, as `authenticate` takes it."""
    if credentials.key is None and credentials.cookie is not None:
        async with request.app.state.sessionmaker.begin() as session:
            account = await _session_account(request, session, credentials.cookie)
        assert account.id is not None
        return AccountCaller(account.id)
    try:
        return await key_caller(request, credentials.key)
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None


async def key_caller(request: Request, key: object, *, check: bool = False) -> ApiKeyCaller:
    """A request's API key as a caller, its rate limit taken. A key this process has seen
    authenticated takes its token now and is checked by the use case's own statement (`check`:
    here, now); any other key is checked first, so that invented keys never make buckets
    (`ratelimit.may_take_before_check`). A request takes one token, whichever way it goes."""
    if not isinstance(key, str) or not API_KEYS.well_formed(key):
        raise InvalidApiKey()
    bucket = ratelimit.key_bucket(key)
    if not ratelimit.may_take_before_check(request, bucket):
        await _check_key(request, key)
        await ratelimit.enforce_key(request, key)
        return ApiKeyCaller(key)
    try:
        await ratelimit.enforce(request, bucket)
    except ratelimit.RateLimited:
        await _check_key(request, key)  # a key revoked since hears so, not "too many requests"
        raise
    if check:
        await _check_key(request, key)
    return ApiKeyCaller(key)


async def _check_key(request: Request, key: str) -> None:
    async with request.app.state.sessionmaker() as session:
        await accounts.authenticate(session, api_key=key)


async def current_account(request: Request, session: SessionDep, credentials: CredentialsDep) -> Account:
    return await authenticate(request, session, credentials)


async def _session_account(request: Request, session: AsyncSession, cookie: str) -> Account:
    found = await sessions.authenticate_session(session, token=cookie)
    if found is None:
        raise InvalidApiKey("Your session has ended: sign in again.")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sessions.csrf_token_matches(keyring(request.app.state.settings), cookie, sent):
            raise CsrfFailed()
    request.state.browser_session_id = found.session_id
    await ratelimit.enforce_session(request, found.session_id)
    return found.account


AccountDep = Annotated[Account, Depends(current_account)]
