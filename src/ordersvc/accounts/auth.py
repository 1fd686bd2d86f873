"""`AccountDep`: the account whose API key a REST request carries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ordersvc.accounts import service as accounts
from ordersvc.accounts.models import Account
from ordersvc.db import SessionDep
from ordersvc.errors import InvalidApiKey, ServiceError
from ordersvc.ops import ratelimit

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="`Authorization: Bearer osk_...`: an API key from `ordersvc accounts create` or `POST /v1/api-keys`.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader", description="The same API key, in `X-API-Key`."
)


UNAUTHORIZED_DETAIL = "Missing or invalid API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."


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
            if request.url.path.startswith("/v1/fulfilment/"):
                bearer = await bearer_scheme(request)
                await fulfilment.authenticate(session, token=bearer.credentials if bearer else None)
            else:
                await accounts.authenticate(session, api_key=await key_from_request(request))
        except ServiceError:
            return False
    return True


async def current_account(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Account:
    # The two schemes are dependencies (not `key_from_request`) so that OpenAPI declares them.
    key = bearer.credentials if bearer else api_key
    try:
        account = await accounts.authenticate(session, api_key=key)
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    assert key is not None
    await ratelimit.enforce(request, key)
    return account


AccountDep = Annotated[Account, Depends(current_account)]
