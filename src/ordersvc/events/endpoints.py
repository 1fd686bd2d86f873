"""REST: the live event stream, and the low-balance alert's threshold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ordersvc.accounts.auth import AccountDep, CredentialsDep, authenticate
from ordersvc.errors import ServiceError
from ordersvc.events import service as events
from ordersvc.events import stream
from ordersvc.money import format_usd
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.schemas import Currency, MoneyStr

router = APIRouter(prefix="/v1", route_class=GuardedRoute)


@router.get(
    "/events/stream",
    operation_id="events_stream",
    tags=["events"],
    summary="Follow your events live (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A `text/event-stream`: each event as `id`, `event` (its type) and `data` (the event's "
            "JSON, as a webhook carries it), and a comment every 15 seconds.",
            "content": {"text/event-stream": {}},
        },
        **problem_responses(stream.TooManyStreams, stream.StreamsBusy),
    },
)
async def events_stream(
    request: Request,
    account: AccountDep,
    credentials: CredentialsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=40,
            description="The last event id received: the stream starts with the events after it (up to an hour back).",
        ),
    ] = None,
) -> StreamingResponse:
    """Your account's events as they happen: the same events, with the same JSON, as webhooks
    get (`order.created`, `order.status_changed`, `order.progress`, `payment.created`,
    `balance.low`), with an API key or the browser's session. A reconnecting `EventSource` sends
    `Last-Event-ID` by itself and gets what it missed. The stream ends after 5 minutes (and when
    the credentials stop being valid); reconnect to go on. At most 5 streams per account."""
    assert account.id is not None
    hub: stream.Hub = request.app.state.event_hub
    maker = request.app.state.sessionmaker

    async def still_allowed() -> bool:
        try:
            async with maker() as session:
                await authenticate(request, session, credentials)
        except ServiceError:
            return False
        return True

    frames = stream.stream(
        hub,
        maker,
        account_id=account.id,
        last_event_id=last_event_id,
        still_allowed=still_allowed,
        disconnected=request.is_disconnected,
        max_seconds=request.app.state.settings.events_stream_seconds,
    )
    first = await anext(frames)  # subscribes now: too many streams is a 429, not a broken stream

    async def body() -> AsyncIterator[str]:
        yield first
        async for frame in frames:
            yield frame

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class BalanceAlertOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"threshold": "25.00", "currency": "USD"}]})

    threshold: MoneyStr | None = Field(
        description="`balance.low` is sent when a balance change takes the balance from at or above this amount to "
        "below it (once per crossing). Null: no alert."
    )
    currency: Currency = "USD"


class BalanceAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"threshold": "25.00"}]})

    threshold: str | None = Field(
        max_length=20, description='A positive USD amount (`"25"`, `"25.50"`), or null to remove the alert.'
    )


def _alert(mills: int | None) -> BalanceAlertOut:
    return BalanceAlertOut(threshold=format_usd(mills) if mills is not None else None)


@router.get("/balance/alert", operation_id="balance_alert_get", tags=["payments"], summary="Get your low-balance alert")
async def balance_alert_get(account: AccountDep, session: SessionDep) -> BalanceAlertOut:
    """The threshold below which a balance change sends `balance.low` (to webhooks and the live
    stream), or null when none is set."""
    assert account.id is not None
    return _alert(await events.balance_alert(session, account_id=account.id))


@router.put(
    "/balance/alert",
    operation_id="balance_alert_set",
    tags=["payments"],
    summary="Set your low-balance alert",
    responses=problem_responses(events.InvalidThreshold),
)
async def balance_alert_set(account: AccountDep, session: SessionDep, body: BalanceAlertIn) -> BalanceAlertOut:
    """Set the threshold of `balance.low` (or remove it, with null)."""
    assert account.id is not None
    mills = events.parse_threshold(body.threshold)
    return _alert(await events.set_balance_alert(session, account_id=account.id, threshold_mills=mills))
