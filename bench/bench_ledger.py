"""Benchmarks: balance reads against history size, and order placement throughput.

    uv run python bench/bench_ledger.py            # embedded PostgreSQL in a temp folder
    DATABASE_URL=postgresql://... uv run python bench/bench_ledger.py

Targets (not asserted in tests; see bench/README.md for results):
- reading a balance costs the same with 10 or 1,000,000 payments in the account's history;
- the legacy `order` action sustains well over 100 orders/s on one account from one process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

from ordersvc import db
from ordersvc.accounts import service as accounts
from ordersvc.config import Settings, get_settings
from ordersvc.ledger import service as ledger
from ordersvc.main import create_app

HISTORY_SIZES = (10, 10_000, 1_000_000)
READS = 2000
ORDERS = 1000
CONCURRENCY = 20


async def account_with_history(maker, payments: int) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with maker.begin() as session:
        account, api_key = await accounts.create_account(session, email=f"bench-{uuid.uuid4().hex[:10]}@example.com")
        # Bulk history straight into the ledger table (the benchmark's set-up, not a code path),
        # then the running balance set to match so `ledger verify` still holds.
        await session.execute(
            sa.text(
                "INSERT INTO payments (account_id, kind, amount_mills) "
                "SELECT :id, 'credit', 1000 FROM generate_series(1, :n)"
            ),
            {"id": account.id, "n": payments},
        )
        await session.execute(
            sa.text("UPDATE accounts SET balance_mills = :n * 1000 WHERE id = :id"), {"id": account.id, "n": payments}
        )
    assert account.id is not None
    return account.id, api_key


async def time_balance_reads(maker, account_id: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    async with maker() as session:
        for _ in range(READS):
            start = time.perf_counter()
            await ledger.get_balance(session, account_id=account_id)
            samples.append(time.perf_counter() - start)
    return samples


def prepare_database() -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = db.start_embedded_postgres(Path(tempfile.mkdtemp(prefix="ordersvc-bench-")))
    get_settings.cache_clear()
    db.run_migrations(os.environ["DATABASE_URL"])


async def main() -> None:
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        maker = app.state.sessionmaker
        print(f"balance read, {READS} reads each (median / p99, microseconds):")
        for size in HISTORY_SIZES:
            account_id, _ = await account_with_history(maker, size)
            samples = sorted(await time_balance_reads(maker, account_id))
            median, p99 = statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6
            print(f"  {size:>9,} payments: {median:7.0f} / {p99:7.0f}")

        _, api_key = await account_with_history(maker, 1)
        async with maker.begin() as session:
            await session.execute(
                sa.text(
                    "INSERT INTO payments (account_id, kind, amount_mills) SELECT id, 'credit', :m FROM accounts "
                    "WHERE id = (SELECT account_id FROM api_keys WHERE prefix = :p)"
                ),
                {"m": ORDERS * 1000, "p": api_key[:12]},
            )
            await session.execute(
                sa.text(
                    "UPDATE accounts SET balance_mills = balance_mills + :m "
                    "WHERE id = (SELECT account_id FROM api_keys WHERE prefix = :p)"
                ),
                {"m": ORDERS * 1000, "p": api_key[:12]},
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            semaphore = asyncio.Semaphore(CONCURRENCY)

            async def order() -> None:
                async with semaphore:
                    r = await client.post(
                        f"/api?key={api_key}", json={"action": "order", "email": "to@example.com", "quantity": 1000}
                    )
                    assert r.json().get("order"), r.text

            start = time.perf_counter()
            await asyncio.gather(*(order() for _ in range(ORDERS)))
            elapsed = time.perf_counter() - start
        print(f"legacy order action, one account, {CONCURRENCY} concurrent: {ORDERS / elapsed:.0f} orders/s")
        async with maker() as session:
            assert await ledger.verify(session) == []
        print("ledger verify: ok")


if __name__ == "__main__":
    prepare_database()
    asyncio.run(main())
