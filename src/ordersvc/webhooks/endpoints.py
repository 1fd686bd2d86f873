"""REST: webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from ordersvc import idempotency
from ordersvc.accounts.auth import AccountDep
from ordersvc.errors import InvalidParams
from ordersvc.keyring import keyring
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.pagination import DEFAULT_LIMIT, MAX_ID, MAX_PER_PAGE
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.webhooks import service as webhooks
from ordersvc.webhooks.models import DeliveryStatus, WebhookEndpoint
from ordersvc.webhooks.schemas import (
    ResendResult,
    WebhookDeliveryDetail,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookEndpointPatch,
)

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["webhooks"])

EndpointId = Annotated[str, Path(description="The endpoint's id (`we_` and 16 hex characters).", max_length=40)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id.")]
_FOUND = (webhooks.EndpointNotFound,)


def _created(endpoint: WebhookEndpoint, secret: str) -> WebhookEndpointCreated:
    return WebhookEndpointCreated(**WebhookEndpointOut.of(endpoint).model_dump(), secret=secret)


@router.post(
    "/webhook-endpoints",
    operation_id="webhook_endpoints_create",
    summary="Create a webhook endpoint",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "description": "The endpoint, with its secret, or replayed.",
            "headers": idempotency.REPLAYED_RESPONSE_HEADER,
        },
        **problem_responses(
            webhooks.InvalidEndpointUrl,
            webhooks.TooManyEndpoints,
            InvalidParams,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
        ),
    },
)
async def webhook_endpoints_create(
    request: Request,
    account: AccountDep,
    session: SessionDep,
    response: Response,
    body: WebhookEndpointIn,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> WebhookEndpointCreated:
    """A new endpoint: from now on, the account's events of the types it names are POSTed to it,
    signed with its secret (Standard Webhooks). The response is the only time the secret is
    shown. At most 10 endpoints per account. With an `Idempotency-Key`, a retry after a lost
    answer gets the same endpoint (and secret) again, while the endpoint exists."""
    settings = request.app.state.settings
    keys = keyring(settings)
    assert account.id is not None
    account_id = account.id

    async def create() -> tuple[WebhookEndpointCreated, int]:
        endpoint, secret = await webhooks.create_endpoint(
            session,
            keys,
            account=account,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
            allow_loopback=settings.webhooks_allow_loopback,
        )
        return _created(endpoint, secret), status.HTTP_201_CREATED

    async def still_there(created: WebhookEndpointCreated) -> bool:
        try:
            await webhooks.get_endpoint(session, account_id=account_id, public_id=created.id)
        except webhooks.EndpointNotFound:
            return False
        return True

    keyed = idempotency.Keyed(
        account_id,
        "webhook_endpoints_create",
        idempotency_key,
        idempotency.fingerprint(**body.model_dump(mode="json")),
        sealed_with=keys,
    )
    return (await idempotency.once(session, keyed, WebhookEndpointCreated, create, still_there)).render(response)


@router.get("/webhook-endpoints", operation_id="webhook_endpoints_list", summary="List your webhook endpoints")
async def webhook_endpoints_list(account: AccountDep, session: SessionDep) -> WebhookEndpointList:
    """Every endpoint of the account, oldest first (secrets are never shown again)."""
    assert account.id is not None
    found = await webhooks.list_endpoints(session, account_id=account.id)
    return WebhookEndpointList(data=[WebhookEndpointOut.of(e) for e in found])


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="webhook_endpoints_get",
    summary="Get a webhook endpoint",
    responses=problem_responses(*_FOUND),
)
async def webhook_endpoints_get(
    account: AccountDep, session: SessionDep, endpoint_id: EndpointId
) -> WebhookEndpointOut:
    """One endpoint of the account: its URL, event types, whether it is enabled (and why the
    service disabled it, if it did), since when it has been failing. Its secret is never shown again."""
    assert account.id is not None
    return WebhookEndpointOut.of(await webhooks.get_endpoint(session, account_id=account.id, public_id=endpoint_id))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="webhook_endpoints_update",
    summary="Change a webhook endpoint",
    responses=problem_responses(*_FOUND, webhooks.InvalidEndpointUrl, InvalidParams),
)
async def webhook_endpoints_update(
    request: Request, account: AccountDep, session: SessionDep, endpoint_id: EndpointId, body: WebhookEndpointPatch
) -> WebhookEndpointOut:
    """Change what the body names: its URL, event types (null: every type), description, or
    whether it is enabled. A disabled endpoint gets no events (those of the time it was disabled
    are not sent later)."""
    assert account.id is not None
    changes = webhooks.EndpointChanges(
        url=body.url,
        event_types=body.event_types,
        event_types_set="event_types" in body.model_fields_set,
        description=body.description,
        enabled=body.enabled,
    )
    endpoint = await webhooks.update_endpoint(
        session,
        account_id=account.id,
        public_id=endpoint_id,
        changes=changes,
        allow_loopback=request.app.state.settings.webhooks_allow_loopback,
    )
    return WebhookEndpointOut.of(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="webhook_endpoints_delete",
    summary="Delete a webhook endpoint",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_FOUND),
)
async def webhook_endpoints_delete(account: AccountDep, session: SessionDep, endpoint_id: EndpointId) -> Response:
    """The endpoint and its deliveries go; nothing more is sent to it."""
    assert account.id is not None
    await webhooks.delete_endpoint(session, account_id=account.id, public_id=endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    operation_id="webhook_endpoints_rotate_secret",
    summary="Rotate a webhook endpoint's secret",
    responses=problem_responses(*_FOUND),
)
async def webhook_endpoints_rotate_secret(
    request: Request, account: AccountDep, session: SessionDep, endpoint_id: EndpointId
) -> WebhookEndpointCreated:
    """A new signing secret, shown this once. For 24 hours the secret before signs too: every
    delivery carries both signatures, so receivers can switch without losing one."""
    assert account.id is not None
    endpoint, secret = await webhooks.rotate_secret(
        session, keyring(request.app.state.settings), account_id=account.id, public_id=endpoint_id
    )
    return _created(endpoint, secret)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    operation_id="webhook_deliveries_list",
    summary="List an endpoint's deliveries",
    responses=problem_responses(*_FOUND),
)
async def webhook_deliveries_list(
    account: AccountDep,
    session: SessionDep,
    endpoint_id: EndpointId,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Page size.")] = DEFAULT_LIMIT,
    starting_after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A delivery id: return older deliveries than it.")
    ] = None,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only deliveries in this status.")
    ] = None,
) -> WebhookDeliveryList:
    """The endpoint's deliveries, newest first, each with its last attempt's outcome (status
    code, duration, the first 1 KB of the response). Kept 30 days."""
    assert account.id is not None
    views, has_more = await webhooks.page_deliveries(
        session,
        account_id=account.id,
        endpoint_public_id=endpoint_id,
        status=delivery_status,
        limit=limit,
        starting_after=starting_after,
    )
    return WebhookDeliveryList(data=[WebhookDeliveryOut.of(v) for v in views], has_more=has_more)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}",
    operation_id="webhook_deliveries_get",
    summary="Get a delivery, with every attempt",
    responses=problem_responses(*_FOUND, webhooks.DeliveryNotFound),
)
async def webhook_deliveries_get(
    account: AccountDep, session: SessionDep, endpoint_id: EndpointId, delivery_id: DeliveryId
) -> WebhookDeliveryDetail:
    """One delivery, with every attempt: when, the HTTP status, how long it took, the first 1 KB
    of the response, and why it failed."""
    assert account.id is not None
    view = await webhooks.get_delivery(
        session, account_id=account.id, endpoint_public_id=endpoint_id, delivery_id=delivery_id
    )
    return WebhookDeliveryDetail.of_view(view)


@router.post(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend",
    operation_id="webhook_deliveries_resend",
    summary="Resend a delivery",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_FOUND, webhooks.DeliveryNotFound, webhooks.DeliveryNotResendable),
)
async def webhook_deliveries_resend(
    account: AccountDep, session: SessionDep, endpoint_id: EndpointId, delivery_id: DeliveryId
) -> WebhookDeliveryOut:
    """The delivery's event once more, as a new delivery at the end of the endpoint's queue,
    with the same `webhook-id` (a delivery still being tried cannot be resent)."""
    assert account.id is not None
    view = await webhooks.resend(
        session, account_id=account.id, endpoint_public_id=endpoint_id, delivery_id=delivery_id
    )
    return WebhookDeliveryOut.of(view)


@router.post(
    "/webhook-endpoints/{endpoint_id}/resend-failed",
    operation_id="webhook_deliveries_resend_failed",
    summary="Resend every failed delivery",
    responses=problem_responses(*_FOUND),
)
async def webhook_deliveries_resend_failed(
    account: AccountDep, session: SessionDep, endpoint_id: EndpointId
) -> ResendResult:
    """Every failed delivery of the endpoint once more, oldest first (one already sent again and
    not failed since is not sent a third time). Enable a disabled endpoint first."""
    assert account.id is not None
    count = await webhooks.resend_failed(session, account_id=account.id, endpoint_public_id=endpoint_id)
    return ResendResult(resent=count)
