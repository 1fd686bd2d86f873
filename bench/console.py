"""The operator's console on a large ledger: its reads at one client, and a streamed export.

    uv run python bench/console.py                 # 1,000,000 payments and orders over 365 days
    uv run python bench/console.py --history 100000

Seeds an embedded PostgreSQL (or `DATABASE_URL`) with one account holding `--history` payments and
as many orders (each with its placing event), spread evenly over `--days` days back from now,
plus 1,000 small accounts; starts `ordersvc serve`; signs an operator in through the API (password,
then TOTP enrolment, as the console does); then measures, over HTTP:

- the overview: its first reads (which sum every closed day once and keep the totals, a bounded
  share per read, until `history_complete`: how many, and the slowest) and its
  steady state (p50 and p99 of 50 reads), against the database's own cost of the plain query that
  sums the last 30 days of payments without the kept totals (psql, same server, same run);
- the lists: a customer search, the orders list filtered by status and by "stuck", the audit log
  (p50 of 30 reads each);
- the export of the big account's payments (`GET /v1/payments/export`, the customer's own): rows
  per second against psql's `COPY` of the same rows, and the server's resident memory before and
  after (streamed: it must not grow with the export).

Every figure is printed with its ratio to the ceiling measured in the same run. Nothing is
asserted: the targets are in bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from load import RssWatch, serve
from seeding import psql, tool

from ordersvc import db
from ordersvc.accounts import totp

HERE = Path(__file__).parent
PASSWORD = "a bench operator passphrase"


def seed(url: str, history: int, days: int) -> tuple[int, str]:
    """The big account (id, API key) and 1,000 small ones, through the CLI and plain SQL."""
    env = {**os.environ, "DATABASE_URL": url}
    ordersvc = str(Path(sys.executable).parent / "ordersvc")
    created = subprocess.run(
        [ordersvc, "accounts", "create", f"big-{uuid.uuid4().hex[:8]}@example.com", "--json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    big = json.loads(created.stdout)
    account_id, key = int(big["id"]), str(big["api_key"])
    spread = f"(now() - make_interval(secs => ({days} * 86400.0) * (1 - g::float8 / {history})))"
    psql(
        url,
        f"""
        INSERT INTO accounts (email, balance_mills, email_verified_at)
            SELECT 'small-' || g || '-{uuid.uuid4().hex[:6]}@example.com', 0, now() FROM generate_series(1, 1000) g;
        CREATE SEQUENCE IF NOT EXISTS bench_console_ids START 268435456;
        INSERT INTO payments (account_id, kind, amount_mills, description, created_at)
            VALUES ({account_id}, 'credit', {history}::bigint * 1000, 'bench',
                    now() - make_interval(days => {days + 1}));
        INSERT INTO orders (public_id, account_id, email, quantity, price_mills, status, created_at)
            SELECT upper(lpad(to_hex(nextval('bench_console_ids')), 8, '0')), {account_id},
                   'r' || (g % 5000) || '@example.com', 500, 500,
                   CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'completed' END, {spread}
            FROM generate_series(1, {history}) g;
        INSERT INTO order_events (order_id, from_status, to_status, reason, created_at)
            SELECT id, NULL, 'pending', 'placed', created_at FROM orders WHERE account_id = {account_id};
        INSERT INTO order_events (order_id, from_status, to_status, reason, created_at)
            SELECT id, 'in progress', 'completed', 'bench', created_at + interval '1 minute'
            FROM orders WHERE account_id = {account_id} AND status = 'completed';
        INSERT INTO payments (account_id, kind, amount_mills, email, order_id, created_at)
            SELECT {account_id}, 'order', -500, email, id, created_at FROM orders WHERE account_id = {account_id};
        UPDATE accounts SET balance_mills = balance_mills + {history}::bigint * 1000 - 500::bigint * {history},
            payments_count = payments_count + 1 + {history}, orders_count = {history}
            WHERE id = {account_id};
        """,
    )
    psql(url, "VACUUM ANALYZE")
    return account_id, key


def operator_session(base: str, url: str) -> httpx.Client:
    env = {**os.environ, "DATABASE_URL": url}
    ordersvc = str(Path(sys.executable).parent / "ordersvc")
    email = f"bench-op-{uuid.uuid4().hex[:8]}@example.com"
    out = subprocess.run(
        [ordersvc, "operators", "create", email, "--role", "admin", "--json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    token = json.loads(out.stdout)["link"].split("/set-password/", 1)[1]
    client = httpx.Client(base_url=base, timeout=600)
    client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD}).raise_for_status()
    login = client.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    secret = client.post("/v1/admin/auth/totp/start", headers=csrf).json()["secret"]
    code = totp.hotp(secret, totp.step_at(time.time()))
    client.post("/v1/admin/auth/totp/confirm", json={"code": code}, headers=csrf).raise_for_status()
    return client


def timed(client: httpx.Client, path: str, n: int, **params: object) -> list[float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        answer = client.get(path, params=params)
        times.append((time.perf_counter() - began) * 1000)
        answer.raise_for_status()
    return times


def psql_ms(url: str, sql: str, n: int = 5) -> float:
    """The database's own time for `sql` (best of n, psql's client-side timing of the statement)."""
    best = float("inf")
    for _ in range(n):
        out = subprocess.run(
            [tool("psql"), url, "-X", "-q", "-t", "-A", "-c", "\\timing on", "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        ms = float(out.strip().splitlines()[-1].split("Time: ")[1].split(" ms")[0])
        best = min(best, ms)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=1_000_000, help="payments and orders of the big account")
    parser.add_argument("--days", type=int, default=365, help="the history's span, back from now")
    parser.add_argument("--json", type=Path, default=HERE / "results-console-latest.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ordersvc-console-bench-"))
    url = os.environ.get("DATABASE_URL") or db.start_embedded_postgres(work)
    db.run_migrations(url)
    began = time.monotonic()
    account_id, key = seed(url, args.history, args.days)
    print(f"seeded {args.history:,} payments and orders over {args.days} days in {time.monotonic() - began:.0f} s")
    port = 19000 + os.getpid() % 1000
    server = serve(url, 1, port, work / "serve.log")
    results: dict[str, object] = {"history": args.history, "days": args.days}
    try:
        base = f"http://127.0.0.1:{port}"
        client = operator_session(base, url)
        # The first reads of an old ledger sum its history, about a second of it per read, until
        # `history_complete`: how many reads that takes, and the slowest of them.
        cold_reads: list[float] = []
        while len(cold_reads) < 100:
            began = time.perf_counter()
            answer = client.get("/v1/admin/overview")
            cold_reads.append((time.perf_counter() - began) * 1000)
            answer.raise_for_status()
            if answer.json()["history_complete"]:
                break
        cold = max(cold_reads)
        warm = timed(client, "/v1/admin/overview", 50)
        plain = psql_ms(
            url,
            "SELECT date_trunc('day', created_at), kind, sum(amount_mills), count(*) FROM payments"
            " WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2",
        )
        p50 = statistics.median(warm)
        p99 = sorted(warm)[int(len(warm) * 0.99) - 1]
        print(f"overview: {len(cold_reads)} first read(s) to sum {args.days} closed days once,"
              f" the slowest {cold:,.0f} ms;"
              f" then p50 {p50:.1f} ms, p99 {p99:.1f} ms; the plain 30-day sum in psql {plain:.1f} ms:"
              f" x{p50 / plain:.2f} of it")  # fmt: skip
        results["overview"] = {
            "first_ms": cold, "first_reads": len(cold_reads), "p50_ms": p50, "p99_ms": p99, "plain_sum_ms": plain,
        }  # fmt: skip
        lists = {
            "customers search": ("/v1/admin/customers", {"q": "small-5"}),
            "orders by status": ("/v1/admin/orders", {"status": "pending"}),
            "orders stuck": ("/v1/admin/orders", {"stuck": "true"}),
            "orders of the big account": ("/v1/admin/orders", {"account_id": account_id}),
            "audit log": ("/v1/admin/audit", {}),
        }
        results["lists"] = {}
        for name, (path, params) in lists.items():
            p = statistics.median(timed(client, path, 30, **params))
            results["lists"][name] = p  # type: ignore[index]
            print(f"{name}: p50 {p:.1f} ms")
        before = psutil.Process(server.pid).memory_info().rss // 2**20
        watch = RssWatch(server.pid)
        began = time.perf_counter()
        rows = 0
        with httpx.stream(
            "GET", f"{base}/v1/payments/export", headers={"Authorization": f"Bearer {key}"}, timeout=600
        ) as r:
            for _ in r.iter_lines():
                rows += 1
        seconds = time.perf_counter() - began
        after = max(watch.stop().values()) // 2**20
        rows -= 1  # the header
        copy_began = time.perf_counter()
        subprocess.run(
            [tool("psql"), url, "-X", "-q", "-c",
             f"COPY (SELECT id, kind, amount_mills, order_id, email, description, created_at FROM payments"
             f" WHERE account_id = {account_id} ORDER BY id DESC) TO STDOUT WITH CSV"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        copy_seconds = time.perf_counter() - copy_began
        rate, ceiling = rows / seconds, rows / copy_seconds
        print(
            f"payments export: {rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s); psql COPY of the same rows"
            f" {ceiling:,.0f} rows/s: x{rate / ceiling:.2f}; server RSS {before} MB before, peak {after} MB"
        )
        results["export"] = {"rows": rows, "rows_per_s": rate, "copy_rows_per_s": ceiling, "rss_before_mb": before,
                             "rss_peak_mb": after}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
