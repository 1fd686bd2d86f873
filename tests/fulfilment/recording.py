"""Test handlers for the reference worker: they record what they were asked and send nothing."""

from __future__ import annotations

import json
import os

from ordersvc.fulfilment.runtime import Job, Stop


def _record(job: Job, outcome: str) -> None:
    with open(os.environ["RECORDING_FILE"], "a") as f:
        f.write(json.dumps({"id": job.id, "email": job.email, "quantity": job.quantity,
                            "opt_out_url": job.opt_out_url, "outcome": outcome}) + "\n")  # fmt: skip


async def deliver(job: Job) -> None:
    """Pretends to deliver in two halves."""
    half = job.quantity // 2
    if await job.report(half):
        _record(job, "stopped")
        raise Stop()
    await job.report(job.quantity)
    _record(job, "delivered")


async def broken(job: Job) -> None:
    await job.report(job.quantity // 4)
    _record(job, "broke")
    raise RuntimeError("the delivery backend is down")
