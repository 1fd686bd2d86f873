from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.events.models import EventType
from ordersvc.events.service import public_id
from ordersvc.webhooks.addresses import MAX_URL_LENGTH
from ordersvc.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from ordersvc.webhooks.service import ENDPOINT_ID_PATTERN, MAX_DESCRIPTION, DeliveryView

_EVENT_TYPES_DESCRIPTION = "The event types it gets; null (the default) for every type, today's and those added later."
_ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": "we_4f1c2a9b7d3e8f60",
    "url": "https://example.com/hooks/ordersvc",
    "event_types": ["order.status_changed", "payment.created"],
    "description": "production",
    "enabled": True,
    "disabled_reason": None,
    "failing_since": None,
    "previous_secret_expires": None,
    "created": "2026-01-22T10:00:00Z",
    "updated": "2026-01-22T10:00:00Z",
}


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://example.com/hooks/ordersvc", "event_types": None}]},
    )

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="Where events are POSTed: an https:// URL whose host resolves to public addresses only.",
    )
    event_types: list[EventType] | None = Field(default=None, description=_EVENT_TYPES_DESCRIPTION)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    enabled: bool = True


class WebhookEndpointPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"enabled": True}, {"event_types": ["order.progress"]}]}
    )

    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: list[EventType] | None = Field(
        default=None, description="The event types it gets; an empty list: every type. Left out: unchanged."
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    enabled: bool | None = Field(
        default=None, description="Enabling an endpoint that was disabled for failing starts its failing period anew."
    )


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_EXAMPLE]})

    id: str = Field(pattern=ENDPOINT_ID_PATTERN)
    url: str
    event_types: list[EventType] | None = Field(description="The event types it gets; null: every type.")
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="Why the service disabled it (every delivery failed for 5 days).")
    failing_since: datetime | None = Field(description="Since when every attempt failed; null after a success.")
    previous_secret_expires: datetime | None = Field(
        description="After a rotation: until when the secret before signs too (both signatures are sent)."
    )
    created: datetime
    updated: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookEndpointOut:
        assert endpoint.created_at is not None
        assert endpoint.updated_at is not None
        return cls(
            id=endpoint.public_id,
            url=endpoint.url,
            event_types=[EventType(t) for t in endpoint.event_types] if endpoint.event_types is not None else None,
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since,
            previous_secret_expires=endpoint.previous_secret_until if endpoint.previous_secret else None,
            created=endpoint.created_at,
            updated=endpoint.updated_at,
        )


_SECRET_DESCRIPTION = (
    "The signing secret (`whsec_` and base64), shown this once: verify `webhook-signature` with it "  # noqa: S105
    "(Standard Webhooks: the `standardwebhooks` or `svix` libraries)."
)


class WebhookEndpointCreated(WebhookEndpointOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
    )

    secret: str = Field(description=_SECRET_DESCRIPTION)


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointOut] = Field(description="Oldest first (at most 10).")


_ATTEMPT_EXAMPLE: dict[str, Any] = {
    "at": "2026-01-22T10:00:01Z",
    "response_status": 500,
    "duration_ms": 84,
    "response_body": "Internal Server Error",
    "error": "HTTP 500",
}


class WebhookAttemptOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ATTEMPT_EXAMPLE]})

    at: datetime
    response_status: int | None = Field(description="The HTTP status it answered with; null when none came.")
    duration_ms: int
    response_body: str | None = Field(description="The first 1 KB of the response body, as text (never interpreted).")
    error: str | None = Field(description="Why the attempt failed (a non-2xx status, a timeout, a refused address...).")

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookAttemptOut:
        assert attempt.attempted_at is not None
        return cls(
            at=attempt.attempted_at,
            response_status=attempt.response_status,
            duration_ms=attempt.duration_ms,
            response_body=attempt.response_body,
            error=attempt.error,
        )


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 1042,
    "event_id": "evt_52118",
    "event_type": "order.status_changed",
    "status": "pending",
    "attempts": 2,
    "next_attempt": "2026-01-22T10:00:20Z",
    "last_attempt": "2026-01-22T10:00:10Z",
    "response_status": 500,
    "duration_ms": 84,
    "response_body": "Internal Server Error",
    "error": "HTTP 500",
    "resend_of": None,
    "created": "2026-01-22T10:00:00Z",
}


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_EXAMPLE]})

    id: int = Field(description="Delivery id; also the cursor for `starting_after`.")
    event_id: str = Field(description="The event's id: the `webhook-id` header of every attempt, to deduplicate by.")
    event_type: EventType
    status: DeliveryStatus = Field(
        description="`pending`: to be sent (again) at `next_attempt`, after every earlier delivery of the endpoint; "
        "`succeeded`; `failed`: retried for 3 days, given up (resend it)."
    )
    attempts: int
    next_attempt: datetime | None
    last_attempt: datetime | None
    response_status: int | None = Field(description="The last attempt's HTTP status.")
    duration_ms: int | None
    response_body: str | None = Field(description="The first 1 KB of the last response body.")
    error: str | None = Field(description="Why the last attempt failed.")
    resend_of: int | None = Field(description="The delivery this one sends again.")
    created: datetime

    @classmethod
    def of(cls, view: DeliveryView) -> WebhookDeliveryOut:
        delivery = view.delivery
        assert delivery.id is not None
        assert delivery.created_at is not None
        return cls(
            id=delivery.id,
            event_id=public_id(delivery.event_id),
            event_type=EventType(view.event_type),
            status=DeliveryStatus(delivery.status),
            attempts=delivery.attempts,
            next_attempt=delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None,
            last_attempt=delivery.last_attempt_at,
            response_status=delivery.response_status,
            duration_ms=delivery.duration_ms,
            response_body=delivery.response_body,
            error=delivery.error,
            resend_of=delivery.resend_of,
            created=delivery.created_at,
        )


class WebhookDeliveryDetail(WebhookDeliveryOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_DELIVERY_EXAMPLE, "attempt_log": [_ATTEMPT_EXAMPLE]}]}
    )

    attempt_log: list[WebhookAttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def of_view(cls, view: DeliveryView) -> WebhookDeliveryDetail:
        base = WebhookDeliveryOut.of(view)
        return cls(**base.model_dump(), attempt_log=[WebhookAttemptOut.of(a) for a in view.attempts])


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDeliveryOut] = Field(description="Newest first.")
    has_more: bool


class ResendResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"resent": 3}]})

    resent: int = Field(description="How many failed deliveries were queued again.")
