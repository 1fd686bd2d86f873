"""REST: the caller's account and its API keys."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response, status

from ordersvc import idempotency
from ordersvc.accounts import service as accounts
from ordersvc.accounts.auth import AccountDep
from ordersvc.accounts.schemas import AccountOut, ApiKeyCreated, ApiKeyIn, ApiKeyList, ApiKeyOut
from ordersvc.keyring import keyring
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep

router = APIRouter(prefix="/v1", route_class=GuardedRoute)


@router.get(
    "/account",
    operation_id="account_get",
    tags=["account"],
    summary="Get your account",
)
async def account_get(account: AccountDep) -> AccountOut:
    """The account the API key belongs to: its email, when it was created, and its balance."""
    return AccountOut.of(account)


@router.get(
    "/api-keys",
    operation_id="api_keys_list",
    tags=["api-keys"],
    summary="List your API keys",
)
async def api_keys_list(account: AccountDep, session: SessionDep) -> ApiKeyList:
    """Every key of the account, active and revoked, oldest first. Only prefixes are shown:
    keys are stored as hashes and cannot be shown again."""
    assert account.id is not None
    keys = await accounts.list_api_keys(session, account_id=account.id)
    return ApiKeyList(data=[ApiKeyOut.of(key) for key in keys])


@router.post(
    "/api-keys",
    operation_id="api_keys_create",
    tags=["api-keys"],
    summary="Create an API key",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "The new key, or replayed.", "headers": idempotency.REPLAYED_RESPONSE_HEADER},
        **problem_responses(idempotency.InvalidIdempotencyKey, idempotency.IdempotencyConflict),
    },
)
async def api_keys_create(
    request: Request,
    account: AccountDep,
    session: SessionDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
    body: ApiKeyIn | None = None,
) -> ApiKeyCreated:
    """A new key for the account. The response is the only time the whole key is shown:
    store it. Use several keys to rotate them without downtime. With an `Idempotency-Key`, a
    retry after a lost answer gets the same key again (the answer is kept sealed for 24 hours,
    and replayed only while the key is active), not a second key."""
    name = body.name if body else ""

    async def create() -> tuple[ApiKeyCreated, int]:
        key, api_key = await accounts.create_api_key(session, account=account, name=name)
        assert key.created_at is not None
        created = ApiKeyCreated(prefix=key.prefix, name=key.name, api_key=api_key, created=key.created_at)
        return created, status.HTTP_201_CREATED

    assert account.id is not None
    account_id = account.id
    keyed = idempotency.Keyed(
        account_id,
        "api_keys_create",
        idempotency_key,
        idempotency.fingerprint(name=name),
        sealed_with=keyring(request.app.state.settings),
    )

    async def still_active(created: ApiKeyCreated) -> bool:
        return await accounts.api_key_is_active(session, account_id=account_id, prefix=created.prefix)

    return (await idempotency.once(session, keyed, ApiKeyCreated, create, still_active)).render(response)


@router.delete(
    "/api-keys/{prefix}",
    operation_id="api_keys_delete",
    tags=["api-keys"],
    summary="Revoke an API key",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(accounts.ApiKeyNotFound),
)
async def api_keys_delete(
    account: AccountDep,
    session: SessionDep,
    prefix: str = Path(description="The key's prefix, as listed (`osk_` and 8 characters).", max_length=200),
) -> Response:
    """Revoke one of the account's active keys; requests with it fail from now on. Revoking the
    key this request uses is allowed."""
    assert account.id is not None
    await accounts.revoke_api_key(session, prefix=prefix, account_id=account.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
