"""The load benchmark: one command, a live `ordersvc serve` on an embedded PostgreSQL, and the
database's own ceiling for placing an order measured in the same run.

    uv run python bench/load.py                  # about 10 minutes on 2 cores
    uv run python bench/load.py --quick          # 100,000 history, 4-second rows: about 4 minutes
    uv run python bench/load.py --quick --only 'legacy-*' --only 'read-*'

Every order variant real traffic takes, at 64 connections, through the legacy API and REST, on
1,000 spread accounts (and two on one hot account): orders/s counting only placed orders (each
body parsed; the rows written to `orders` counted as a cross-check), p50, p99, x the ceiling,
failed requests. Then order placement and reads at one client, and the workers' peak RSS. Each
figure is printed beside its target (issue 15). See bench/README.md for how each row is built.

The load generator (bench/httpload.py) runs on the same machine and takes a share of the CPU."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ceiling
import httpload
import seeding
import variants
from variants import APIS, ONE_CLIENT, READS, VARIANTS, Api, Variant, apis_of, orders_per_request

from ordersvc import db

HERE = Path(__file__).resolve().parent

# Issue 15's targets.
MIN_X_CEILING = 0.75  # an order row against the ceiling (spread accounts)
MIN_X_HOT_CEILING = 1.5  # a hot-account row against pgbench's one-account figure
MAX_P99_OVER_P50 = 3.0
MAX_P99_MS = 100.0
MAX_READ_OVER_ORDER = 1.0  # a read's p50 against placing an order at one client
MAX_RSS_MB = 200
# Issue 20's: a mass order costs about what its orders cost as single REST requests, or less
# (its orders/s over its ceiling at least this share of the single orders' row).
MIN_BATCH_X_SINGLE = 0.9
BATCH_CONNECTIONS_SHARE = 16  # a batch row's connections: the rows' count / this (4 of 64: 400 orders)


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


def serve(url: str, workers: int, port: int, log: Path, *, webhooks: bool = False) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # The webhook sender runs in each worker, as by default; with --webhook-endpoints it delivers
        # to the local sink (loopback allowed), else it only follows the events.
        "ORDERSVC_WEBHOOKS_IN_SERVE": "true",
        "ORDERSVC_WEBHOOKS_ALLOW_LOOPBACK": "true" if webhooks else "false",
        "DATABASE_URL": url,
        "ORDERSVC_RATE_LIMIT_PER_SECOND": "0",  # the benchmark is a few clients hammering their keys
        "ORDERSVC_MAILER_IN_SERVE": "false",  # the outbox just grows
        "ORDERSVC_DB_POOL_SIZE": str(max(10, 64 // workers + 4)),
        "ORDERSVC_DB_MAX_OVERFLOW": "0",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "ordersvc"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        # Every worker up (each logs its startup), not only the first: a row measured while one
        # is still starting would measure fewer workers.
        started = log.read_text(errors="replace").count("Application startup complete")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200 and started >= workers:
                    return process
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@dataclass
class Row:
    id: str
    title: str
    api: str
    connections: int
    rate: float
    p50_ms: float
    p99_ms: float
    failed: int
    timeouts: int
    placed_bodies: int  # placed orders read from the bodies over the whole run (warm-up and tail too)
    failed_total: int  # failed requests over the whole run
    unanswered_total: int  # timeouts over the whole run: their orders may have been placed all the same
    rows_written: int | None = None  # rows added to `orders` by the run
    consents_added: int | None = None
    outbox_added: int | None = None
    x_ceiling: float | None = None
    ceiling_now: float | None = None  # pgbench just before and just after the row (the mean), at the sweep's best
    spread_ceiling_now: float | None = None  # a hot row: the spread ceiling too, before and after it (the mean)
    ceiling_around: list[tuple[float, float]] | None = None  # (ceiling, spread ceiling) before, and after
    # A hot row: its spread twin measured again just before it and just after it (orders/s), so
    # that the two are compared in the same minutes, by their own rates.
    twin_around: list[float] | None = None
    x_order_p50: float | None = None  # reads: p50 against the p50 of the orders sent in turn with them
    order_p50_ms: float | None = None  # reads: the p50 of those orders
    first_failure: str = ""
    misses: list[str] = field(default_factory=list)  # the targets missed

    @classmethod
    def of(cls, result: httpload.Result, id: str, title: str, api: str, connections: int) -> Row:
        return cls(
            id, title, api, connections, result.rate, result.p50_ms, result.p99_ms, result.failures, result.timeouts,
            result.ok_total, result.failures_total, result.timeouts_total,
            first_failure=result.first_failure.decode(errors="replace"),
        )  # fmt: skip


TWINS = {variant.id: variant for variant in VARIANTS}


def order_row_id(api: Api, variant: Variant) -> str:
    return f"{api}-{variant.id}"


def ceiling_now(
    url: str,
    variant: Variant,
    spread: tuple[int, int],
    hot: tuple[int, int],
    ceil_spread: ceiling.Sweep,
    ceil_hot: ceiling.Sweep,
    seconds: int,
) -> tuple[float, float]:
    """pgbench at the sweep's best client count, now: the row's own ceiling (one account for a
    hot row) and the spread ceiling (the same figure for a spread row), which a hot row's twin
    is compared at."""
    if not variant.hot:
        spread_now = ceiling.pgbench(url, ceiling.PLACE_ORDER_TRANSACTION, *spread, ceil_spread.best_clients, seconds)
        return spread_now, spread_now
    hot_now = ceiling.pgbench(url, ceiling.PLACE_ORDER_TRANSACTION, *hot, ceil_hot.best_clients, seconds)
    spread_now = ceiling.pgbench(url, ceiling.PLACE_ORDER_TRANSACTION, *spread, ceil_spread.best_clients, seconds)
    return hot_now, spread_now


def measure_orders(
    url: str, port: int, api: Api, variant: Variant, seeded: seeding.Seeded, *, connections: int, seconds: float
) -> Row:
    tag = f"{api}-{variant.id}-{time.time_ns()}"
    # Every row starts as the ceiling's runs do, with no earlier row's writes left to flush: the
    # first rows no longer pay for the seeding's and pgbench's.
    seeding.psql(url, "CHECKPOINT")
    mark = seeding.high_water(url)
    result = asyncio.run(
        httpload.run("127.0.0.1", port, variants.order_requests(api, variant, seeded, tag),
                     connections=connections, seconds=seconds, ok=variants.order_placed(api))
    )  # fmt: skip
    written = seeding.written_since(url, mark)
    title = (
        variant.title
        if api != "batch"
        else f"{variant.title}: {variants.BATCH_LINES}-line batches, {connections} conn."
    )
    row = Row.of(result, order_row_id(api, variant), title, api, connections)
    row.rows_written, row.consents_added, row.outbox_added = written.orders, written.consents, written.outbox
    per_request = orders_per_request(api)  # a batch's answer counts when all of its orders were placed
    row.rate, row.placed_bodies = row.rate * per_request, row.placed_bodies * per_request
    row.unanswered_total *= per_request
    return row


def ask_recipients(url: str, port: int, seeded: seeding.Seeded) -> dict[str, int]:
    """One order from each spread account to its own new address, so that the address is asked
    (a consent request, its message queued) before the 'asked' rows order to it again."""
    requests = [
        variants.order_request("legacy", key, seeding.asked_address(account_id), None)
        for key, account_id in zip(seeded.spread_keys, seeded.spread_ids, strict=True)
    ]
    answers = asyncio.run(httpload.send_all("127.0.0.1", port, requests, connections=32))
    placed = variants.order_placed("legacy")
    refused = [body for status, body in answers if not placed(status, body)]
    assert not refused, f"{len(refused)} asking orders failed, first: {refused[0][:200]!r}"
    return seeding.asked_state(url, seeded.spread_ids)


def judge_order_row(row: Row, variant: Variant, spread_rates: dict[str, float]) -> None:
    minimum = MIN_X_HOT_CEILING if variant.hot else MIN_X_CEILING
    if row.x_ceiling is None or row.x_ceiling < minimum:
        row.misses.append(f"< {minimum} x")
    if row.api == "batch":
        # A request of 100 orders: its latency is not an order's. Its orders/s against the same
        # variant's single REST orders, each over the spread ceiling of its own moment.
        single = spread_rates.get(f"rest-{variant.id}")
        if (
            single is not None
            and row.spread_ceiling_now
            and row.rate / row.spread_ceiling_now < MIN_BATCH_X_SINGLE * single
        ):
            row.misses.append(f"< {MIN_BATCH_X_SINGLE} x single orders")
    else:
        if not row.p99_ms <= MAX_P99_OVER_P50 * row.p50_ms:
            row.misses.append("p99 > 3 x p50")
        if not row.p99_ms < MAX_P99_MS:
            row.misses.append("p99 >= 100 ms")
    if row.failed:
        row.misses.append("failed > 0")
    # Every placed order is a row, and every row a placed order, but for requests that timed out
    # (unanswered, yet placed in the end).
    written = row.rows_written
    if written is None or not row.placed_bodies <= written <= row.placed_bodies + row.unanswered_total:
        row.misses.append(f"rows written {written} != placed {row.placed_bodies}")
    # Against its twin measured just before and just after it, by their own rates (the mean of the
    # two cancels a drift of the machine over the three): pgbench's drift between rows, a different
    # workload's, moved the two apart by more than they differ.
    if row.twin_around and row.rate < sum(row.twin_around) / len(row.twin_around):
        row.misses.append(f"slower than {variant.spread_twin}")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = (
            c.ljust(w) if i in (0, 1, len(header) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(row: Row) -> str:
    return "pass" if not row.misses else "FAIL: " + ", ".join(row.misses)


def subscribe_endpoints(port: int, keys: list[str], per_account: int, sink_port: int) -> int:
    """`per_account` endpoints for each key's account, every event type, through the REST API."""
    import httpx

    async def subscribe() -> int:
        limits = httpx.Limits(max_connections=16)
        timeout = httpx.Timeout(30, pool=None)  # thousands queue for 16 connections
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout) as client:

            async def one(key: str, n: int) -> None:
                answer = await client.post("/v1/webhook-endpoints", headers={"X-API-Key": key},
                                           json={"url": f"http://127.0.0.1:{sink_port}/hooks/{n}"})  # fmt: skip
                answer.raise_for_status()

            await asyncio.gather(*(one(k, n) for k in keys for n in range(per_account)))
        return len(keys) * per_account

    return asyncio.run(subscribe())


def webhook_backlog(url: str, received: int, seconds: float) -> dict[str, float]:
    """What the sender did during the run: deliveries the sink received (per second), and those
    left to send (dispatched and pending; events not yet dispatched)."""
    pending = int(seeding.psql(url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"))
    undispatched = int(seeding.psql(url, "SELECT count(*) FROM events WHERE id > (SELECT after FROM webhook_dispatch)"))
    return {"received": received, "received_per_second": round(received / seconds, 1), "pending": pending,
            "events_not_dispatched": undispatched, "seconds": round(seconds, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured order row")
    parser.add_argument("--read-seconds", type=float, default=5.0, help="length of each one-client read row")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--history", type=int, default=1_000_000, help="payments and orders on the big account")
    parser.add_argument("--clients", type=int, default=64, help="connections of the order rows")
    parser.add_argument("--ceiling-clients", default="8,16,32,64", help="pgbench client counts to sweep")
    parser.add_argument("--ceiling-seconds", type=int, default=8, help="length of each pgbench run of the sweep")
    parser.add_argument("--row-ceiling-seconds", type=int, default=4, help="pgbench just before each order row")
    parser.add_argument("--no-own-sql", action="store_true", help="skip pgbench of the service's own statement")
    parser.add_argument("--quick", action="store_true", help="100,000 history, 4-second rows, 4-second pgbench runs")
    parser.add_argument(
        "--only", action="append", metavar="PATTERN",
        help="run only rows whose id matches (fnmatch, repeatable): legacy-confirmed, rest-hot-key-new, "
             "legacy-1client, read-rest-orders-big, 'legacy-*', '*-new' ... (the ceiling always runs)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-endpoints", type=int, default=0, metavar="N",
        help="subscribe N webhook endpoints (every event type) per account, delivered to a local sink by the"
             " sender inside serve (issue 18); 0: no endpoints, no sender",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=HERE / "results-latest.json", help="write the results here")
    args = parser.parse_args()
    if args.quick:
        args.history, args.seconds, args.read_seconds, args.ceiling_seconds = 100_000, 4.0, 3.0, 4
        args.row_ceiling_seconds = 2

    def selected(row_id: str) -> bool:
        return not args.only or any(fnmatch.fnmatchcase(row_id, p) for p in args.only)

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ordersvc-bench-"))
    url = os.environ.get("DATABASE_URL") or db.start_embedded_postgres(work)
    print(f"database: {'DATABASE_URL' if 'DATABASE_URL' in os.environ else 'embedded, in ' + str(work)}", flush=True)
    db.run_migrations(url)
    seeded = seeding.seed(url, args.history)
    print(f"seeded {seeding.SPREAD + 3:,} accounts and a history of {args.history:,} orders + payments"
          f" in {time.monotonic() - began:.0f} s", flush=True)  # fmt: skip

    spread = (seeded.spread_ids[0], seeded.spread_ids[-1])
    hot = (seeded.hot_id, seeded.hot_id)
    sweep_clients = [int(c) for c in args.ceiling_clients.split(",")]
    ceil_spread = ceiling.sweep(url, ceiling.PLACE_ORDER_TRANSACTION, *spread, sweep_clients, args.ceiling_seconds)
    ceil_hot = ceiling.sweep(url, ceiling.PLACE_ORDER_TRANSACTION, *hot, sweep_clients, args.ceiling_seconds)
    print(f"ceiling (pgbench, the place-order transaction): {ceil_spread.best:,.0f} tx/s on 1,000 accounts"
          f" ({ceil_spread.best_clients} clients; {ceil_spread.by_clients}), {ceil_hot.best:,.0f} tx/s on one"
          f" account ({ceil_hot.best_clients} clients; {ceil_hot.by_clients})", flush=True)  # fmt: skip
    own: dict[str, float] | None = None
    if not args.no_own_sql and ceiling.own_sql_available(url):
        own = {
            "1000 accounts": ceiling.pgbench(
                url, ceiling.OWN_SQL, *spread, ceil_spread.best_clients, args.ceiling_seconds
            ),
            "1 account": ceiling.pgbench(url, ceiling.OWN_SQL, *hot, ceil_hot.best_clients, args.ceiling_seconds),
        }
        print(f"pgbench, the service's own one statement (informative): {own}", flush=True)
    else:
        print("pgbench, the service's own one statement: skipped (function absent or --no-own-sql)", flush=True)

    port = 18000 + os.getpid() % 1000
    log = work / "serve.log"
    sink: subprocess.Popen[str] | None = None
    if args.webhook_endpoints:
        sink_port = port + 1000
        sink = subprocess.Popen([sys.executable, str(HERE / "httpsink.py"), str(sink_port)], stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
    server = serve(url, args.workers, port, log, webhooks=bool(args.webhook_endpoints))
    if args.webhook_endpoints:
        try:
            subscribed = subscribe_endpoints(
                port, [seeded.hot_key, *seeded.spread_keys], args.webhook_endpoints, port + 1000
            )
        except BaseException:  # the server and the sink go with the run
            server.terminate()
            if sink is not None:
                sink.terminate()
            raise
        print(f"subscribed {subscribed:,} webhook endpoints ({args.webhook_endpoints} per account) to a local sink",
              flush=True)  # fmt: skip
    watch = RssWatch(server.pid)
    webhooks_began = time.monotonic()
    order_rows: list[Row] = []
    read_rows: list[Row] = []
    asked: dict[str, int] | None = None
    try:
        for variant in VARIANTS:
            for api in apis_of(variant):
                if not selected(order_row_id(api, variant)):
                    continue
                if variant.recipient == "asked" and asked is None:
                    asked = ask_recipients(url, port, seeded)
                    print(f"  asked each spread account's recipient once: consent rows {asked}", flush=True)
                # The ceiling again just before the row and just after it (the sweep's best client
                # count): this machine's speed drifts by a quarter within one run, and a row is judged
                # against the mean of its two neighbours, the machine's speed of its own moment.
                connections = args.clients if api != "batch" else max(1, args.clients // BATCH_CONNECTIONS_SHARE)
                # A hot row's spread twin again just before it and just after it, outside its ceiling's
                # pgbench runs: the two compared by their own rates, in the same minutes.
                twin = TWINS.get(variant.spread_twin or "")
                twin_rates: list[float] = []
                if twin is not None:
                    twin_rates.append(measure_orders(url, port, api, twin, seeded, connections=connections,
                                                     seconds=args.seconds).rate)  # fmt: skip
                row_ceiling = ceiling_now(url, variant, spread, hot, ceil_spread, ceil_hot, args.row_ceiling_seconds)
                row = measure_orders(url, port, api, variant, seeded, connections=connections, seconds=args.seconds)
                after = ceiling_now(url, variant, spread, hot, ceil_spread, ceil_hot, args.row_ceiling_seconds)
                if twin is not None:
                    twin_rates.append(measure_orders(url, port, api, twin, seeded, connections=connections,
                                                     seconds=args.seconds).rate)  # fmt: skip
                    row.twin_around = twin_rates
                row.ceiling_around = [row_ceiling, after]
                now, spread_now = ((a + b) / 2 for a, b in zip(row_ceiling, after, strict=True))
                row.ceiling_now, row.spread_ceiling_now = now, spread_now
                row.x_ceiling = row.rate / now
                order_rows.append(row)
                print(f"  {row.id}: {row.rate:,.0f}/s p50 {row.p50_ms:.1f} ms p99 {row.p99_ms:.1f} ms"
                      f" x{row.x_ceiling:.2f} (ceiling now {now:,.0f}"
                      + (f", spread ceiling now {spread_now:,.0f}" if variant.hot else "")
                      + (f", {variant.spread_twin} just before and after {twin_rates[0]:,.0f}, {twin_rates[1]:,.0f}/s"
                         if row.twin_around else "") + f") failed {row.failed}"
                      f" (whole run {row.failed_total}, unanswered"
                      f" {row.unanswered_total}) rows written {row.rows_written}, placed {row.placed_bodies}"
                      + (f" first failure {row.first_failure!r}" if row.failed else ""), flush=True)  # fmt: skip
        one_client: dict[str, Row] = {}
        for api in APIS:
            if selected(order_row_id(api, ONE_CLIENT)):
                row = measure_orders(url, port, api, ONE_CLIENT, seeded, connections=1, seconds=args.seconds)
                one_client[api] = row
                print(f"  {row.id}: {row.rate:,.0f}/s p50 {row.p50_ms:.2f} ms p99 {row.p99_ms:.2f} ms", flush=True)
        for read in READS:
            for size, key in (("big", seeded.big_key), ("small", seeded.small_key)):
                row_id = f"read-{read.api}-{read.id}-{size}"
                if not selected(row_id):
                    continue
                # Each read in turn with an order at one client (spread accounts, recipient confirmed), on
                # one connection: the two latencies come from the same moments of the machine.
                orders = variants.order_requests(read.api, ONE_CLIENT, seeded, f"{row_id}-{time.time_ns()}")
                read_result, order_result = asyncio.run(
                    httpload.alternate("127.0.0.1", port, variants.always(read.make(key)), orders,
                                       seconds=args.read_seconds, ok_first=variants.read_served(read.field),
                                       ok_second=variants.order_placed(read.api))
                )  # fmt: skip
                history = f"{args.history:,}" if size == "big" else "100"
                row = Row.of(read_result, row_id, f"{read.title}, {history} payments", read.api, 1)
                row.order_p50_ms = order_result.p50_ms
                row.x_order_p50 = row.p50_ms / order_result.p50_ms
                if row.x_order_p50 > MAX_READ_OVER_ORDER:
                    row.misses.append(f"> {MAX_READ_OVER_ORDER} x order p50")
                if order_result.failures:
                    row.misses.append("orders beside it failed")
                if row.failed:
                    row.misses.append("failed > 0")
                read_rows.append(row)
                print(f"  {row.id}: p50 {row.p50_ms:.2f} ms p99 {row.p99_ms:.2f} ms", flush=True)
    finally:
        peaks = watch.stop()
        webhooks_seconds = time.monotonic() - webhooks_began
        server.terminate()
        server.wait(timeout=30)
    webhook_figures = None
    if sink is not None:
        sink.terminate()
        received = int((sink.communicate(timeout=30)[0] or "0").strip() or 0)
        webhook_figures = webhook_backlog(url, received, webhooks_seconds)
        print(f"webhooks: {webhook_figures}", flush=True)
    rss = sorted(round(peak / 2**20) for pid, peak in peaks.items() if pid != server.pid)
    worker_rss = max(rss, default=0)

    spread_rates = {r.id: r.rate / r.spread_ceiling_now for r in order_rows if r.spread_ceiling_now}
    by_id = {order_row_id(a, v): v for v in VARIANTS for a in apis_of(v)}
    for row in order_rows:
        judge_order_row(row, by_id[row.id], spread_rates)
    for row in one_client.values():
        if row.failed:
            row.misses.append("failed > 0")

    memory = round(psutil.virtual_memory().total / 2**30)
    print(f"\nmachine: {platform.machine()}, {psutil.cpu_count()} cores, {memory} GiB, Python"
          f" {platform.python_version()}, serve --workers {args.workers}, {args.clients} connections,"
          f" {args.seconds:g} s rows, history {args.history:,}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"ceiling: pgbench, the place-order transaction: {ceil_spread.best:,.0f} tx/s on 1,000 accounts"
          f" ({ceil_spread.best_clients} clients), {ceil_hot.best:,.0f} tx/s on one account"
          f" ({ceil_hot.best_clients} clients), run again at that count just before each row (its 'ceiling"
          f" now'); each row is x its ceiling now, hot-account rows x the one-account figure\n")  # fmt: skip
    header = ("order row, 64 connections", "API", "orders/s", "rows written", "p50 ms", "p99 ms", "ceiling now",
              "x ceiling", "failed", "targets")  # fmt: skip
    print(table(header, [
        (r.title, r.api, f"{r.rate:,.0f}", f"{r.rows_written:,}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
         f"{r.ceiling_now or 0:,.0f}", f"{r.x_ceiling:.2f}", str(r.failed), verdict(r))
        for r in order_rows
    ]))  # fmt: skip
    print()
    read_header = ("at one client", "API", "req/s", "p50 ms", "p99 ms", "order p50 ms, in turn", "x order p50",
                   "failed", "targets")  # fmt: skip
    print(table(read_header, [
        (r.title, r.api, f"{r.rate:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
         "" if r.order_p50_ms is None else f"{r.order_p50_ms:.2f}",
         "" if r.x_order_p50 is None else f"{r.x_order_p50:.2f}", str(r.failed), verdict(r))
        for r in [*one_client.values(), *read_rows]
    ]))  # fmt: skip
    rss_verdict = "pass" if worker_rss < MAX_RSS_MB else f"FAIL: >= {MAX_RSS_MB} MB"
    print(f"\nworker RSS max: {worker_rss} MB (per process under the supervisor: {rss}): {rss_verdict}")
    if own:
        print(f"pgbench, the service's own one statement (informative): {own}")
    if asked is not None:
        print(f"the asked recipients' consent rows after asking: {asked}")
    every = [*order_rows, *one_client.values(), *read_rows]
    missed = sum(bool(r.misses) for r in every) + (worker_rss >= MAX_RSS_MB)
    print(f"targets: {len(every) + 1 - missed} met, {missed} missed; total time {time.monotonic() - began:.0f} s")

    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "cores": psutil.cpu_count(), "memory_gib": memory,
                    "python": platform.python_version()},
        "settings": {"workers": args.workers, "connections": args.clients, "seconds": args.seconds,
                     "read_seconds": args.read_seconds, "history": args.history, "quick": args.quick,
                     "only": args.only},
        "ceiling": {"1000 accounts": {"best": ceil_spread.best, "clients": ceil_spread.best_clients,
                                      "by_clients": ceil_spread.by_clients},
                    "1 account": {"best": ceil_hot.best, "clients": ceil_hot.best_clients,
                                  "by_clients": ceil_hot.by_clients}},
        "own_sql": own,
        "asked_consents": asked,
        "orders": [asdict(r) for r in order_rows],
        "one_client": [asdict(r) for r in one_client.values()],
        "reads": [asdict(r) for r in read_rows],
        "worker_rss_mb": {"max": worker_rss, "per_worker": rss},
        "targets_missed": missed,
        "webhook_endpoints_per_account": args.webhook_endpoints,
        "webhooks": webhook_figures,
    }  # fmt: skip
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
