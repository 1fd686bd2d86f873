"""The fulfilment queue: workers claim pending orders under a lease, report progress, and end
them completed, partial or canceled. Every call is one transaction under the order's row lock,
so a refund is paid once, even when a cancellation races a completion."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.bearer_tokens import TokenScheme, hash_token, matches, prefix_of
from ordersvc.config import Settings, get_settings
from ordersvc.consent import repository as consent_repository
from ordersvc.consent import tokens as consent_tokens
from ordersvc.errors import Conflict, InvalidParams, NotFound, ServiceError
from ordersvc.fulfilment import repository
from ordersvc.fulfilment.models import Worker
from ordersvc.keyring import keyring
from ordersvc.orders import lifecycle
from ordersvc.orders.models import Order, OrderStatus
from ordersvc.text import clean_text
from ordersvc.timestamps import utc_now

WORKER_TOKENS = TokenScheme("owk_")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_CLAIM = 50
MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 10, 3600
# Opt-out links in deliveries must keep working long after the order.
DELIVERY_OPT_OUT_DAYS = 400


class InvalidWorkerToken(ServiceError):
    status = 401
    code = "unauthorized"
    message = "Missing or invalid worker token."


class WorkerExists(Conflict):
    code = "worker_exists"
    message = "A worker with that name already exists."


class WorkerNotFound(NotFound):
    message = "No active worker with that name."


class InvalidWorkerName(InvalidParams):
    message = "A worker name is 1-64 letters, digits or '_.-'."


class OrderNotHeld(Conflict):
    code = "lease_not_held"
    message = "This worker does not hold this order (its lease expired and it was claimed again, or it is finished)."


class InvalidProgress(Conflict):
    code = "invalid_progress"
    message = "Delivered counts only go up, to at most the order's quantity."


@dataclass(frozen=True, slots=True)
class Claimed:
    order: Order
    opt_out_url: str


async def create_worker(session: AsyncSession, *, name: str) -> tuple[Worker, str]:
    if _NAME.fullmatch(name) is None:
        raise InvalidWorkerName()
    token = WORKER_TOKENS.new()
    worker = await repository.insert_worker(session, name, prefix_of(token), hash_token(token))
    if worker is None:
        raise WorkerExists()
    return worker, token


async def revoke_worker(session: AsyncSession, *, name: str) -> None:
    if not await repository.revoke_worker(session, name, utc_now()):
        raise WorkerNotFound()


async def list_workers(session: AsyncSession) -> list[Worker]:
    return await repository.list_workers(session)


async def authenticate(session: AsyncSession, *, token: object) -> Worker:
    if not isinstance(token, str) or not WORKER_TOKENS.well_formed(token):
        raise InvalidWorkerToken()
    worker = await repository.active_worker_by_prefix(session, prefix_of(token))
    if not matches(token, worker.token_hash if worker is not None else None) or worker is None:
        raise InvalidWorkerToken()
    return worker


def _opt_out_url(settings: Settings, consent_id: int) -> str:
    expires = int((utc_now() + timedelta(days=DELIVERY_OPT_OUT_DAYS)).timestamp())
    token = consent_tokens.sign(
        keyring(settings), consent_tokens.ConsentToken(consent_id, consent_tokens.ConsentAction.OPT_OUT, expires)
    )
    return f"{settings.public_url.rstrip('/')}/consent/optout/{token}"


async def claim(
    session: AsyncSession, *, worker: Worker, limit: int, lease_seconds: int, settings: Settings | None = None
) -> list[Claimed]:
    """Up to `limit` orders for this worker, each with the opt-out URL the worker must put in
    every delivery. Only `pending` orders (their recipient confirmed) and orders whose lease
    expired (their delivered count kept) are handed out."""
    settings = settings or get_settings()
    if not 1 <= limit <= MAX_CLAIM or not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
        raise InvalidParams(f"limit is 1-{MAX_CLAIM}; lease_seconds is {MIN_LEASE_SECONDS}-{MAX_LEASE_SECONDS}.")
    now = utc_now()
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed = []
    for order in await repository.claim(session, now, limit):
        assert order.id is not None
        if order.cancel_requested_at is not None:
            # Canceled while its worker was away: it ends here, with its refund, not resumed.
            await _finish(session, order, "stopped: cancellation requested (lease expired)")
            continue
        reason = f"claimed by worker {worker.name}"
        if order.status == OrderStatus.IN_PROGRESS.value:
            reason = f"lease expired; resumed by worker {worker.name} at {order.delivered} delivered"
        await repository.update_order(session, order.id, worker_id=worker.id, lease_until=lease_until, progress_at=now)
        await lifecycle.transition(session, order, OrderStatus.IN_PROGRESS, reason)
        consent_id = await consent_repository.consent_id_of(session, order.account_id, order.email)
        assert consent_id is not None  # a pending order's pair has a consent row
        claimed.append(Claimed(order, _opt_out_url(settings, consent_id)))
    return claimed


async def _held(session: AsyncSession, worker: Worker, public_id: str) -> Order:
    order = await repository.lock_order(session, public_id)
    if order is None:
        raise NotFound("No such order.")
    if order.status != OrderStatus.IN_PROGRESS.value or order.worker_id != worker.id:
        raise OrderNotHeld()
    return order


async def _finish(session: AsyncSession, order: Order, reason: str) -> Order:
    """End an order in progress at its delivered count (`lifecycle.finish`: completed, partial
    with a refund of the undelivered share, or canceled with a full refund when nothing was
    delivered), releasing its lease."""
    assert order.id is not None
    await repository.update_order(session, order.id, lease_until=None)
    await lifecycle.finish(session, order, reason)
    return order


@dataclass(frozen=True, slots=True)
class WorkState:
    order: Order
    stop: bool  # the customer or the recipient canceled: stop delivering


async def report_progress(session: AsyncSession, *, worker: Worker, public_id: str, delivered: int) -> WorkState:
    """Record units delivered so far (monotonic, at most the quantity). If a cancellation was
    requested, the order ends now as partial (or canceled) with its refund, and the worker is
    told to stop."""
    order = await _held(session, worker, public_id)
    assert order.id is not None
    if not order.delivered <= delivered <= order.quantity:
        raise InvalidProgress()
    await repository.update_order(
        session, order.id, delivered=delivered, progress=delivered * 100 // order.quantity, progress_at=utc_now()
    )
    await session.refresh(order)
    if order.cancel_requested_at is not None:
        return WorkState(await _finish(session, order, "stopped: cancellation requested"), True)
    return WorkState(order, False)


async def heartbeat(session: AsyncSession, *, worker: Worker, public_id: str, lease_seconds: int) -> WorkState:
    if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
        raise InvalidParams(f"lease_seconds is {MIN_LEASE_SECONDS}-{MAX_LEASE_SECONDS}.")
    order = await _held(session, worker, public_id)
    assert order.id is not None
    if order.cancel_requested_at is not None:
        return WorkState(await _finish(session, order, "stopped: cancellation requested"), True)
    await repository.update_order(session, order.id, lease_until=utc_now() + timedelta(seconds=lease_seconds))
    await session.refresh(order)
    return WorkState(order, False)


async def complete(session: AsyncSession, *, worker: Worker, public_id: str) -> Order:
    """Everything delivered. If a cancellation was recorded, the order ends at the count last
    reported instead (partial, with its refund): the customer's cancel came first."""
    order = await _held(session, worker, public_id)
    assert order.id is not None
    if order.cancel_requested_at is not None:
        return await _finish(session, order, "stopped: cancellation requested")
    await repository.update_order(session, order.id, delivered=order.quantity, progress=100)
    await session.refresh(order)
    return await _finish(session, order, f"completed by worker {worker.name}")


async def fail(session: AsyncSession, *, worker: Worker, public_id: str, reason: str) -> Order:
    order = await _held(session, worker, public_id)
    return await _finish(session, order, f"failed: {clean_text(reason[:200])}")
