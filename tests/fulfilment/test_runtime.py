"""`ordersvc worker --handler module:function` against a live server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import MakeCustomer
from tests.fulfilment.conftest import ConfirmedOrder
from tests.legacy.helpers import snapshot
from tests.support import run_cli, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("empty_queue")
async def test_reference_worker_completes_and_fails_orders(
    make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token, sessionmaker, tmp_path: Path
) -> None:
    customer = await make_customer(balance="10")
    first = await confirmed_order(customer, 1000)
    second = await confirmed_order(customer, 2000)
    token = await worker_token()
    recording = tmp_path / "recorded.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECORDING_FILE": str(recording), "ORDERSVC_WORKER_TOKEN": token}
    with serve(tmp_path) as server:
        done = run_cli("worker", "--handler", "tests.fulfilment.recording:deliver", "--url", server.base_url,
                       "--once", "--lease", "30", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.split()) == sorted([first, "completed", second, "completed"])
        recorded = [json.loads(line) for line in recording.read_text().splitlines()]
        assert {r["id"] for r in recorded} == {first, second}
        assert all("/consent/optout/" in r["opt_out_url"] for r in recorded)

        third = await confirmed_order(customer, 1000)
        broke = run_cli("worker", "--handler", "tests.fulfilment.recording:broken", "--url", server.base_url,
                        "--once", env=env)  # fmt: skip
        assert f"{third}\tfailed" in broke.stdout
        status = httpx.get(f"{server.base_url}/v1/orders/{third}", headers={"X-API-Key": customer.api_key}).json()
        assert (status["status"], status["progress"]) == ("partial", 25)
    # 1 + 2 + 1 charged; 0.75 refunded for the broken one.
    assert (await snapshot(sessionmaker, customer))[0] == "6.75"


def test_bad_handler_and_missing_token_are_one_line_errors() -> None:
    no_token = run_cli("worker", "--handler", "x:y", env={k: v for k, v in os.environ.items()
                                                          if k != "ORDERSVC_WORKER_TOKEN"})  # fmt: skip
    assert no_token.returncode == 1
    assert "worker token" in no_token.stderr
    bad = run_cli("worker", "--handler", "nope", "--token", "owk_x")
    assert (bad.returncode, "module:function" in bad.stderr) == (1, True)
