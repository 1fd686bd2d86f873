"""Prometheus metrics. `/metrics` is served only when `ORDERSVC_METRICS=true` (see health.py).

With `serve --workers N` every worker process writes its samples to PROMETHEUS_MULTIPROC_DIR
(set by `serve`), and a scrape of any worker reports the sum over all of them.

Business counters (orders, refunds, deposits) count committed work only: services call
`count_after_commit(session, ...)` and the increment happens when that transaction commits."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

HTTP_REQUESTS = Counter(
    "ordersvc_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "ordersvc_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ORDERS_PLACED = Counter("ordersvc_orders_placed_total", "Orders placed (committed).")
REFUNDS = Counter("ordersvc_refunds_total", "Refund payments (committed).")
REFUNDED_MILLS = Counter("ordersvc_refunded_mills_total", "Money refunded, in mills (0.001 USD).")
DEPOSITS_CREDITED = Counter("ordersvc_deposits_credited_total", "Deposits credited to an account (committed).")
RATE_LIMITED = Counter("ordersvc_rate_limited_total", "Requests refused by the per-key rate limit.")
OUTBOX_BACKLOG = Gauge(
    "ordersvc_outbox_backlog", "Outbox messages waiting to be sent (read at scrape time).", multiprocess_mode="max"
)
DB_POOL_IN_USE = Gauge(
    "ordersvc_db_pool_connections_in_use", "Database connections checked out of the pool.", multiprocess_mode="livesum"
)

_PENDING = "ordersvc_metrics_pending"


def count_after_commit(session: AsyncSession, increment: Callable[[], Any]) -> None:
    """Run `increment` if, and when, the session's transaction commits."""
    session.sync_session.info.setdefault(_PENDING, []).append(increment)


@event.listens_for(Session, "after_commit")
def _apply_pending(session: Session) -> None:
    for increment in session.info.pop(_PENDING, []):
        increment()


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
