"""Webhooks: customers' endpoints (at most `MAX_ENDPOINTS` each), their signing secrets (sealed at
rest, rotated with an overlap), the dispatch of events to deliveries, and what a delivery's
attempts record. The sending itself is `webhooks.sender`."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts.models import Account
from ordersvc.errors import Conflict, InvalidParams, NotFound
from ordersvc.events import service as events
from ordersvc.events.models import Event, EventType
from ordersvc.keyring import Keyring, Purpose
from ordersvc.timestamps import utc_now
from ordersvc.webhooks import addresses, signing
from ordersvc.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDispatch,
    WebhookEndpoint,
)

MAX_ENDPOINTS = 10
MAX_DESCRIPTION = 500
# A rotated secret keeps signing beside the new one this long.
SECRET_OVERLAP = timedelta(hours=24)
# A delivery is retried this long after its first attempt; an endpoint whose every attempt failed
# this long is disabled (and its customer told).
RETRY_PERIOD = timedelta(days=3)
FAILING_PERIOD = timedelta(days=5)
MAX_RETRY_DELAY = timedelta(hours=6)
# What a delivery keeps of a response body (never interpreted).
RESPONSE_KEPT_BYTES = 1024

ENDPOINT_ID_PATTERN = r"^we_[0-9a-f]{16}$"


class EndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    message = "No such webhook endpoint."


class DeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    message = "No such delivery of this endpoint."


class TooManyEndpoints(Conflict):
    code = "too_many_webhook_endpoints"
    message = f"An account has at most {MAX_ENDPOINTS} webhook endpoints: delete one first."


class InvalidEndpointUrl(InvalidParams):
    code = "invalid_webhook_url"
    message = "The endpoint URL cannot be used."
    field = "url"


class DeliveryNotResendable(Conflict):
    code = "webhook_delivery_pending"
    message = (
        "This delivery, or a resend of its event, is still being tried: it cannot be resent until that "
        "succeeds or fails."
    )


def _seal(keys: Keyring, endpoint_public_id: str, secret: str) -> str:
    return keys.seal(Purpose.WEBHOOK_SECRET, secret.encode(), context=endpoint_public_id.encode())


def signing_secrets(keys: Keyring, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the one before it during the
    overlap after a rotation."""
    context = endpoint.public_id.encode()
    found = [keys.unseal(Purpose.WEBHOOK_SECRET, endpoint.secret, context=context).plaintext.decode()]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        found.append(keys.unseal(Purpose.WEBHOOK_SECRET, endpoint.previous_secret, context=context).plaintext.decode())
    return found


def _check_url(url: str, allow_loopback: bool) -> str:
    try:
        return addresses.check_url(url, allow_loopback=allow_loopback)
    except addresses.UrlRefused as exc:
        raise InvalidEndpointUrl(str(exc)) from None


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidParams(f"description is longer than {MAX_DESCRIPTION} characters")
    return description


def _types(event_types: list[EventType] | None) -> list[str] | None:
    """NULL for every type (none named: left out, null or an empty list); else the types named,
    once each, in the catalogue's order."""
    if not event_types:
        return None
    return [t.value for t in EventType if t in event_types]


async def create_endpoint(
    session: AsyncSession,
    keys: Keyring,
    *,
    account: Account,
    url: str,
    event_types: list[EventType] | None,
    description: str,
    enabled: bool,
    allow_loopback: bool,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown this once)."""
    assert account.id is not None
    checked = _check_url(url, allow_loopback)
    types = _types(event_types)
    _check_description(description)
    # Counted under the account row's lock: two creations at once cannot both be the tenth.
    await session.execute(sa.text("SELECT 1 FROM accounts WHERE id = :id FOR NO KEY UPDATE"), {"id": account.id})
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(WebhookEndpoint).where(col(WebhookEndpoint.account_id) == account.id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise TooManyEndpoints()
    public_id = "we_" + secrets.token_hex(8)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        public_id=public_id,
        account_id=account.id,
        url=checked,
        event_types=types,
        description=description,
        enabled=enabled,
        secret=_seal(keys, public_id, secret),
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def list_endpoints(session: AsyncSession, *, account_id: int) -> list[WebhookEndpoint]:
    found = await session.execute(
        sa.select(WebhookEndpoint)
        .where(col(WebhookEndpoint.account_id) == account_id)
        .order_by(col(WebhookEndpoint.id))
    )
    return list(found.scalars())


async def get_endpoint(
    session: AsyncSession, *, account_id: int, public_id: str, lock: bool = False
) -> WebhookEndpoint:
    stmt = sa.select(WebhookEndpoint).where(
        col(WebhookEndpoint.account_id) == account_id, col(WebhookEndpoint.public_id) == public_id
    )
    if lock:
        stmt = stmt.with_for_update()
    endpoint = (await session.execute(stmt)).scalar_one_or_none()
    if endpoint is None:
        raise EndpointNotFound()
    return endpoint


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    """What a PATCH sets: only the fields it names (`event_types` named as null: every type)."""

    url: str | None = None
    event_types: list[EventType] | None = None
    event_types_set: bool = False
    description: str | None = None
    enabled: bool | None = None


async def update_endpoint(
    session: AsyncSession, *, account_id: int, public_id: str, changes: EndpointChanges, allow_loopback: bool
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, account_id=account_id, public_id=public_id, lock=True)
    if changes.url is not None:
        endpoint.url = _check_url(changes.url, allow_loopback)
    if changes.event_types_set:
        endpoint.event_types = _types(changes.event_types)
    if changes.description is not None:
        endpoint.description = _check_description(changes.description)
    if changes.enabled is not None:
        if changes.enabled and not endpoint.enabled:
            # Enabled again: a fresh start (its failing period counts from the next failure).
            endpoint.failing_since = None
            endpoint.disabled_reason = None
        endpoint.enabled = changes.enabled
    endpoint.updated_at = utc_now()
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def delete_endpoint(session: AsyncSession, *, account_id: int, public_id: str) -> None:
    """The endpoint goes, with its deliveries (a sender delivering to it finds nothing to record)."""
    endpoint = await get_endpoint(session, account_id=account_id, public_id=public_id, lock=True)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, keys: Keyring, *, account_id: int, public_id: str
) -> tuple[WebhookEndpoint, str]:
    """A new secret (shown this once); the one before keeps signing beside it for SECRET_OVERLAP.
    A second rotation within the overlap ends the first one's: only two secrets ever sign."""
    endpoint = await get_endpoint(session, account_id=account_id, public_id=public_id, lock=True)
    secret = signing.new_secret()
    now = utc_now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + SECRET_OVERLAP
    endpoint.secret = _seal(keys, endpoint.public_id, secret)
    endpoint.updated_at = now
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


# Deliveries, as customers see them.


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery: WebhookDelivery
    event_type: str
    attempts: list[WebhookAttempt]


def _with_event_type() -> sa.Select[WebhookDelivery, str]:
    return sa.select(WebhookDelivery, col(Event.type)).join(Event, col(Event.id) == col(WebhookDelivery.event_id))


async def page_deliveries(
    session: AsyncSession,
    *,
    account_id: int,
    endpoint_public_id: str,
    status: DeliveryStatus | None,
    limit: int,
    starting_after: int | None,
) -> tuple[list[DeliveryView], bool]:
    """An endpoint's deliveries, newest first; `starting_after` a delivery id (the next page)."""
    endpoint = await get_endpoint(session, account_id=account_id, public_id=endpoint_public_id)
    stmt = (
        _with_event_type()
        .where(col(WebhookDelivery.endpoint_id) == endpoint.id)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit + 1)
    )
    if status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status.value)
    if starting_after is not None:
        stmt = stmt.where(col(WebhookDelivery.id) < starting_after)
    rows = (await session.execute(stmt)).all()
    views = [DeliveryView(row[0], row[1], []) for row in rows[:limit]]
    return views, len(rows) > limit


async def get_delivery(
    session: AsyncSession, *, account_id: int, endpoint_public_id: str, delivery_id: int
) -> DeliveryView:
    endpoint = await get_endpoint(session, account_id=account_id, public_id=endpoint_public_id)
    row = (
        await session.execute(
            _with_event_type().where(
                col(WebhookDelivery.endpoint_id) == endpoint.id, col(WebhookDelivery.id) == delivery_id
            )
        )
    ).one_or_none()
    if row is None:
        raise DeliveryNotFound()
    attempts = await session.execute(
        sa.select(WebhookAttempt).where(col(WebhookAttempt.delivery_id) == delivery_id).order_by(col(WebhookAttempt.id))
    )
    return DeliveryView(row[0], row[1], list(attempts.scalars()))


async def resend(session: AsyncSession, *, account_id: int, endpoint_public_id: str, delivery_id: int) -> DeliveryView:
    """The delivery's event once more, as a new delivery at the end of the endpoint's queue (the
    same `webhook-id`: a receiver that has it already can tell)."""
    view = await get_delivery(
        session, account_id=account_id, endpoint_public_id=endpoint_public_id, delivery_id=delivery_id
    )
    if view.delivery.status == DeliveryStatus.PENDING:
        raise DeliveryNotResendable()
    queued_again = await session.scalar(
        sa.select(sa.literal(True)).where(
            col(WebhookDelivery.endpoint_id) == view.delivery.endpoint_id,
            col(WebhookDelivery.event_id) == view.delivery.event_id,
            col(WebhookDelivery.status) == DeliveryStatus.PENDING.value,
        )
    )
    if queued_again:  # one resend of an event at a time
        raise DeliveryNotResendable()
    again = WebhookDelivery(
        endpoint_id=view.delivery.endpoint_id,
        event_id=view.delivery.event_id,
        resend_of=view.delivery.resend_of or view.delivery.id,
    )
    session.add(again)
    await session.flush()
    await _wake(session, view.delivery.endpoint_id)
    await session.refresh(again)
    return DeliveryView(again, view.event_type, [])


async def resend_failed(session: AsyncSession, *, account_id: int, endpoint_public_id: str) -> int:
    """Every failed delivery of the endpoint once more, oldest first, unless its event is already
    queued again. Returns how many."""
    endpoint = await get_endpoint(session, account_id=account_id, public_id=endpoint_public_id, lock=True)
    result = await session.execute(
        sa.text(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, resend_of)"
            " SELECT d.endpoint_id, d.event_id, coalesce(d.resend_of, d.id) FROM webhook_deliveries d"
            " WHERE d.endpoint_id = :endpoint AND d.status = 'failed'"
            "   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries q WHERE q.endpoint_id = d.endpoint_id"
            "                   AND q.event_id = d.event_id AND q.id > d.id)"
            " ORDER BY d.id"
        ),
        {"endpoint": endpoint.id},
    )
    resent = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if resent:
        assert endpoint.id is not None
        await _wake(session, endpoint.id)
    return resent


async def _wake(session: AsyncSession, endpoint_id: int) -> None:
    """Deliveries were queued at the end of the endpoint's queue: due now if it was empty."""
    await session.execute(
        sa.text("UPDATE webhook_endpoints SET due_at = coalesce(due_at, clock_timestamp()) WHERE id = :id"),
        {"id": endpoint_id},
    )


# The dispatch: events to deliveries.


@dataclass(frozen=True, slots=True)
class Dispatched:
    read: int  # events read
    queued: int  # deliveries queued


async def dispatch(session: AsyncSession, *, limit: int = 1000) -> Dispatched | None:
    """Read the events committed since the last dispatch, and queue a delivery of each to every
    enabled endpoint of its account that wants its type and existed when it happened. One
    dispatcher at a time (the state row's lock; None: another one holds it); an event read twice
    is queued once."""
    state = (
        await session.execute(
            sa.select(WebhookDispatch).where(col(WebhookDispatch.id) == 1).with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if state is None:
        return None
    tail = events.Tail(after=state.after, gaps=dict(zip(state.gaps, state.gaps_seen_at, strict=True)))
    read = await tail.read(session, limit=limit)
    queued = 0
    if read:
        # Queued, and the endpoints told (`due_at`): those whose queue was empty, and those a
        # sender holds (so that its `release`, which waits for this row lock, sees these rows).
        queued = int(
            (
                await session.execute(
                    sa.text(
                        "WITH queued AS ("
                        "  INSERT INTO webhook_deliveries (endpoint_id, event_id)"
                        "  SELECT w.id, e.id FROM unnest(CAST(:ids AS bigint[])) AS u(id)"
                        "  JOIN events e ON e.id = u.id"
                        "  JOIN webhook_endpoints w ON w.account_id = e.account_id AND w.enabled"
                        "   AND (w.event_types IS NULL OR e.type = ANY (w.event_types))"
                        "   AND w.created_at <= e.created_at"
                        "  ORDER BY e.id, w.id"
                        "  ON CONFLICT (endpoint_id, event_id) WHERE resend_of IS NULL DO NOTHING"
                        "  RETURNING endpoint_id"
                        "), woken AS ("
                        "  UPDATE webhook_endpoints w SET due_at = coalesce(w.due_at, clock_timestamp())"
                        "  WHERE w.id IN (SELECT endpoint_id FROM queued)"
                        "    AND (w.due_at IS NULL OR w.lease_until > clock_timestamp())"
                        ")"
                        " SELECT count(*) FROM queued"
                    ),
                    {"ids": [e.id for e in read]},
                )
            ).scalar_one()
        )
    gaps = sorted(tail.gaps.items())
    state.after = tail.after
    state.gaps = [g for g, _ in gaps]
    state.gaps_seen_at = [seen for _, seen in gaps]
    await session.flush()
    return Dispatched(len(read), queued)


# The sender's side.


@dataclass(frozen=True, slots=True)
class Due:
    """The delivery at the head of an endpoint's queue, due now, with what sending it needs."""

    endpoint: WebhookEndpoint
    delivery: WebhookDelivery
    event: events.EventRow


LEASE = timedelta(seconds=60)
# Endpoints of one account leased at once, by all senders together.
PER_ACCOUNT = 4


@dataclass(frozen=True, slots=True)
class Lease:
    endpoint_id: int
    until: datetime


async def claim_endpoints(session: AsyncSession, *, limit: int, per_account: int = PER_ACCOUNT) -> list[Lease]:
    """Endpoints whose queue's head is due, leased to this sender (one sender per endpoint, so
    each is delivered to in order; the lease runs out if the sender dies). The least recently
    served first (a released lease is the time it was served), and at most `per_account` of one
    account's endpoints leased at once, so that a customer whose receivers are slow takes a
    share of the senders, not all of them."""
    result = await session.execute(
        sa.text(
            "WITH candidates AS ("
            "  SELECT e.id, e.account_id, coalesce(e.lease_until, '-infinity') AS served, e.due_at"
            "  FROM webhook_endpoints e"
            "  WHERE e.enabled AND e.due_at <= clock_timestamp()"
            "    AND coalesce(e.lease_until, '-infinity') < clock_timestamp()"
            "  ORDER BY served, e.due_at LIMIT :scan FOR UPDATE SKIP LOCKED"
            "), ranked AS ("
            "  SELECT c.id, c.served, c.due_at,"
            "    row_number() OVER (PARTITION BY c.account_id ORDER BY c.served, c.due_at)"
            "    + (SELECT count(*) FROM webhook_endpoints x"
            "       WHERE x.account_id = c.account_id AND x.lease_until > clock_timestamp()) AS busy"
            "  FROM candidates c"
            ")"
            " UPDATE webhook_endpoints w SET lease_until = clock_timestamp() + CAST(:lease AS interval)"
            " FROM (SELECT id FROM ranked WHERE busy <= :per_account"
            "       ORDER BY served, due_at LIMIT :limit) chosen"
            " WHERE w.id = chosen.id"
            " RETURNING w.id, w.lease_until"
        ),
        {"lease": LEASE, "limit": limit, "scan": limit * 4, "per_account": per_account},
    )
    return [Lease(row[0], row[1]) for row in result]


EVENT_GONE = f"the event is past its {events.RETENTION_DAYS}-day retention"


async def due(session: AsyncSession, *, endpoint_id: int, limit: int) -> list[Due]:
    """The endpoint's next deliveries, in order, from its queue's head if that is due (and the
    endpoint is still enabled): at most `limit`, each with its event. A delivery whose event went
    (a resend of an event near the end of its retention) fails here, and the queue goes on."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not endpoint.enabled:
        return []
    while True:
        queued = list(
            (
                await session.execute(
                    sa.select(WebhookDelivery)
                    .where(col(WebhookDelivery.endpoint_id) == endpoint_id, col(WebhookDelivery.status) == "pending")
                    .order_by(col(WebhookDelivery.id))
                    .limit(limit)
                )
            ).scalars()
        )
        now = utc_now()
        if not queued or queued[0].next_attempt_at is None or queued[0].next_attempt_at > now:
            return []
        found = {e.id: e for e in await events.get_events(session, [d.event_id for d in queued])}
        gone = [d for d in queued if d.event_id not in found]
        if not gone:
            return [
                Due(endpoint, d, found[d.event_id]) for d in queued if d.next_attempt_at and d.next_attempt_at <= now
            ]
        for delivery in gone:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.error = EVENT_GONE
        await session.flush()


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """After the `attempts`-th failure: base x 2^(attempts-1), at most MAX_RETRY_DELAY, with
    jitter (between half and all of it), so endpoints that failed together do not retry together."""
    full = min(base_seconds * 2 ** min(attempts - 1, 30), MAX_RETRY_DELAY.total_seconds())
    return timedelta(seconds=random.uniform(full / 2, full))  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True, slots=True)
class Outcome:
    response_status: int | None
    duration_ms: int
    response_body: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.response_status is not None and 200 <= self.response_status < 300


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery_status: str
    endpoint_disabled: bool  # this failure ended the failing period: the endpoint is now disabled
    # After a success: the endpoint is still enabled and at the same URL (else its turn ends, and
    # the next delivery goes as it now stands).
    unchanged: bool = True


async def record(
    session: AsyncSession, *, delivery_id: int, outcome: Outcome, retry_base_seconds: float, url: str
) -> Recorded | None:
    """The attempt, and what follows from it: the delivery succeeded, or is retried later, or
    (RETRY_PERIOD after its first attempt) failed; the endpoint is healthy again, or failing
    since its first failure, or (FAILING_PERIOD later) disabled. None if the delivery or its
    endpoint is gone (deleted meanwhile)."""
    if outcome.succeeded:
        return await _record_success(session, delivery_id=delivery_id, outcome=outcome, url=url)
    # The endpoint's row first, then the delivery's, as deleting an endpoint locks them.
    endpoint_id = await session.scalar(
        sa.select(col(WebhookDelivery.endpoint_id)).where(col(WebhookDelivery.id) == delivery_id)
    )
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True) if endpoint_id else None
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True) if endpoint else None
    if endpoint is None or delivery is None:
        return None
    now = utc_now()
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            response_status=outcome.response_status,
            duration_ms=outcome.duration_ms,
            response_body=outcome.response_body,
            error=outcome.error,
        )
    )
    first_attempt = await session.scalar(
        sa.select(sa.func.min(WebhookAttempt.attempted_at)).where(col(WebhookAttempt.delivery_id) == delivery_id)
    )
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = outcome.response_status
    delivery.duration_ms = outcome.duration_ms
    delivery.response_body = outcome.response_body
    delivery.error = outcome.error
    disabled = False
    # A failure (a success took `_record_success`).
    if first_attempt is not None and now - first_attempt >= RETRY_PERIOD:
        delivery.status = DeliveryStatus.FAILED.value
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts, retry_base_seconds)
    endpoint.failing_since = endpoint.failing_since or now
    if endpoint.enabled and now - endpoint.failing_since >= FAILING_PERIOD:
        endpoint.enabled = False
        endpoint.disabled_reason = f"every delivery failed for {FAILING_PERIOD.days} days"
        endpoint.updated_at = now
        disabled = True
    await session.flush()
    return Recorded(delivery.status, disabled)


async def _record_success(session: AsyncSession, *, delivery_id: int, outcome: Outcome, url: str) -> Recorded | None:
    """A success in one statement: the attempt, the delivery done, the endpoint healthy again;
    and whether the endpoint is still enabled, at the URL the delivery went to."""
    unchanged = (
        await session.execute(
            sa.text(
                "WITH d AS ("
                "  UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1,"
                "   last_attempt_at = clock_timestamp(), response_status = :status, duration_ms = :ms,"
                "   response_body = :body, error = NULL"
                "  WHERE id = :id AND status = 'pending' RETURNING id, endpoint_id"
                "), a AS ("
                "  INSERT INTO webhook_attempts (delivery_id, response_status, duration_ms, response_body)"
                "  SELECT id, :status, :ms, :body FROM d"
                "), e AS ("
                "  UPDATE webhook_endpoints SET failing_since = NULL"
                "  WHERE id = (SELECT endpoint_id FROM d) AND failing_since IS NOT NULL"
                ")"
                " SELECT w.enabled AND w.url = :url FROM d JOIN webhook_endpoints w ON w.id = d.endpoint_id"
            ),
            {
                "id": delivery_id,
                "status": outcome.response_status,
                "ms": outcome.duration_ms,
                "body": outcome.response_body,
                "url": url,
            },
        )
    ).scalar_one_or_none()
    return Recorded(DeliveryStatus.SUCCEEDED.value, False, unchanged=bool(unchanged)) if unchanged is not None else None


async def release(session: AsyncSession, *, lease: Lease) -> None:
    """The endpoint free again, served now; only if the lease is still this sender's (one that ran
    out may have gone to another sender meanwhile)."""
    held = await session.scalar(
        sa.select(col(WebhookEndpoint.id))
        .where(col(WebhookEndpoint.id) == lease.endpoint_id, col(WebhookEndpoint.lease_until) == lease.until)
        .with_for_update()
    )
    if held is None:
        return
    # A statement of its own, after the lock: it sees every delivery queued by a dispatch that
    # held the row (the dispatch locks the rows of held endpoints it queues to).
    await session.execute(
        sa.text(
            "UPDATE webhook_endpoints SET lease_until = clock_timestamp(), due_at = ("
            "  SELECT d.next_attempt_at FROM webhook_deliveries d"
            "  WHERE d.endpoint_id = :id AND d.status = 'pending' ORDER BY d.id LIMIT 1)"
            " WHERE id = :id"
        ),
        {"id": lease.endpoint_id},
    )


async def wake_forgotten(session: AsyncSession) -> int:
    """Endpoints with deliveries queued but no `due_at`: a dispatch that committed while a sender
    that had just served the endpoint was giving it back (a narrow race) leaves one so. Run now
    and then by `run`; returns how many it set."""
    result = await session.execute(
        sa.text(
            "UPDATE webhook_endpoints w SET due_at = h.next_attempt_at"
            " FROM webhook_endpoints e CROSS JOIN LATERAL ("
            "  SELECT d.next_attempt_at FROM webhook_deliveries d"
            "  WHERE d.endpoint_id = e.id AND d.status = 'pending' ORDER BY d.id LIMIT 1) h"
            " WHERE w.id = e.id AND e.enabled AND e.due_at IS NULL"
            "   AND coalesce(e.lease_until, '-infinity') < clock_timestamp()"
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune(session: AsyncSession, *, limit: int = 10_000) -> int:
    """Deliveries (with their attempts) and events older than the retention period, oldest
    first, a batch of each at a time. Returns how many rows went."""
    gone = 0
    for table in ("webhook_deliveries", "events"):
        result = await session.execute(
            sa.text(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT :limit)"  # noqa: S608
                " AND created_at < clock_timestamp() - CAST(:days AS interval)"
            ),
            {"limit": limit, "days": timedelta(days=events.RETENTION_DAYS)},
        )
        gone += int(result.rowcount or 0)  # type: ignore[attr-defined]
    # Resends are younger than their events: those whose event went, with it.
    result = await session.execute(
        sa.text(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT d.id FROM webhook_deliveries d"
            " WHERE d.resend_of IS NOT NULL AND d.status <> 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id) LIMIT :limit)"
        ),
        {"limit": limit},
    )
    return gone + int(result.rowcount or 0)  # type: ignore[attr-defined]
