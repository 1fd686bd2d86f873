"""The reference worker runtime: claims orders, keeps their leases alive, reports progress, and
completes or fails them, calling the operator's handler for the actual delivery.

A handler is `async def handler(job: Job) -> None`: deliver to `job.email` (every delivery
carrying `job.opt_out_url`), call `await job.report(delivered)` as units go out, and stop when
it returns True (the order was canceled). Returning completes the order; raising fails it at
its delivered count. ordersvc ships no handler that sends anything."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    email: str
    quantity: int
    delivered: int
    opt_out_url: str
    _client: httpx.AsyncClient = field(repr=False)
    stopped: bool = False

    async def report(self, delivered: int) -> bool:
        """Record progress; True means stop (the order was canceled)."""
        response = await self._client.post(f"/v1/fulfilment/orders/{self.id}/progress", json={"delivered": delivered})
        response.raise_for_status()
        self.delivered = delivered
        self.stopped = bool(response.json()["stop"])
        return self.stopped


Handler = Callable[[Job], Awaitable[None]]


class Stop(Exception):
    """Raised by a handler to end a job quietly after `report` said stop."""


def load_handler(spec: str) -> Handler:
    """`package.module:function`."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError("--handler must look like package.module:function")
    handler: Any = getattr(importlib.import_module(module_name), attribute)
    if not asyncio.iscoroutinefunction(handler):
        raise ValueError(f"{spec} must be an async function taking a Job")
    return handler  # type: ignore[no-any-return]


async def _heartbeats(client: httpx.AsyncClient, job: Job, lease_seconds: int) -> None:
    """Keep the job's lease from the claim until the job ends (also while it waits its turn in
    the batch). A failed beat is retried at the next interval; a refusal stops the job."""
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            response = await client.post(
                f"/v1/fulfilment/orders/{job.id}/heartbeat", json={"lease_seconds": lease_seconds}
            )
        except httpx.HTTPError as exc:
            logger.warning("heartbeat for %s failed (%s); retrying", job.id, exc)
            continue
        if response.status_code != 200 or response.json()["stop"]:
            job.stopped = True
            return


async def run_job(client: httpx.AsyncClient, job: Job, handler: Handler) -> str:
    if job.stopped:  # canceled (or lost) while waiting for its turn
        return "stopped"
    try:
        await handler(job)
    except Stop:
        return "stopped"
    except Exception as exc:
        if job.stopped:
            return "stopped"
        logger.exception("order %s failed in its handler", job.id)
        await client.post(f"/v1/fulfilment/orders/{job.id}/fail", json={"reason": f"{type(exc).__name__}: {exc}"})
        return "failed"
    if job.stopped:
        return "stopped"
    response = await client.post(f"/v1/fulfilment/orders/{job.id}/complete")
    return "completed" if response.status_code == 200 else f"complete refused ({response.status_code})"


async def run(
    *,
    base_url: str,
    token: str,
    handler: Handler,
    batch: int = 10,
    lease_seconds: int = 300,
    poll_seconds: float = 5.0,
    once: bool = False,
    stop: asyncio.Event | None = None,
) -> dict[str, str]:
    """Claim and work orders until `stop` is set (or, with `once`, until the queue is empty).
    Returns each order's outcome."""
    stop = stop or asyncio.Event()
    outcomes: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        while not stop.is_set():
            try:
                response = await client.post(
                    "/v1/fulfilment/claim", json={"limit": batch, "lease_seconds": lease_seconds}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                if once:
                    raise
                logger.warning("claim failed (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
                continue
            claimed = response.json()["data"]
            jobs = [
                Job(item["id"], item["email"], item["quantity"], item["delivered"], item["opt_out_url"], client)
                for item in claimed
            ]
            beats = [asyncio.create_task(_heartbeats(client, job, lease_seconds)) for job in jobs]
            try:
                for job, beat in zip(jobs, beats, strict=True):
                    try:
                        outcomes[job.id] = await run_job(client, job, handler)
                    finally:
                        beat.cancel()
            finally:
                for beat in beats:
                    beat.cancel()
                await asyncio.gather(*beats, return_exceptions=True)
            if not claimed:
                if once:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
    return outcomes
