"""What writing events costs the database on the order path (issue 18), in one run: pgbench of
the place-order transaction (bench/ceiling.py) with the events the service now writes for an
order (`order.created` by the trigger on `order_events`, `payment.created` as the ledger's balance
move writes it) and without any (the trigger disabled, no payment event), alternated so that the
machine's drift falls on both alike.

    uv run python bench/events_cost.py              # an embedded PostgreSQL, about 2 minutes
    uv run python bench/events_cost.py --rounds 6 --seconds 8

Prints each pair and the median ratio with/without, for 1,000 spread accounts and one hot one."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import ceiling  # noqa: E402
import seeding  # noqa: E402
from seeding import RECIPIENT, psql  # noqa: E402

from ordersvc import db  # noqa: E402

# The payment's event, as `ordersvc_post_payments` writes it (one INSERT beside the payment's).
WITH_EVENTS = ceiling.PLACE_ORDER_TRANSACTION.replace(
    """INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
  SELECT :aid, 'order', -500, '{RECIPIENT}', id FROM o;""".replace("{RECIPIENT}", RECIPIENT),
    """, p AS (
    INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
    SELECT :aid, 'order', -500, '{RECIPIENT}', id FROM o RETURNING id
)
INSERT INTO events (account_id, type, payment_id) SELECT :aid, 'payment.created', id FROM p;""".replace(
        "{RECIPIENT}", RECIPIENT
    ),
)
assert WITH_EVENTS != ceiling.PLACE_ORDER_TRANSACTION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=16, help="pgbench clients (spread); the hot account uses 8")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ordersvc-events-cost-"))
    url = os.environ.get("DATABASE_URL") or db.start_embedded_postgres(work)
    db.run_migrations(url)
    seeded = seeding.seed(url, 10_000)
    cases = {"1000 accounts": ((seeded.spread_ids[0], seeded.spread_ids[-1]), args.clients),
             "1 account": ((seeded.hot_id, seeded.hot_id), 8)}  # fmt: skip
    for name, ((lo, hi), clients) in cases.items():
        ratios = []
        for n in range(args.rounds):
            psql(url, "ALTER TABLE order_events DISABLE TRIGGER order_events_emit")
            without = ceiling.pgbench(url, ceiling.PLACE_ORDER_TRANSACTION, lo, hi, clients, args.seconds)
            psql(url, "ALTER TABLE order_events ENABLE TRIGGER order_events_emit")
            with_events = ceiling.pgbench(url, WITH_EVENTS, lo, hi, clients, args.seconds)
            ratios.append(with_events / without)
            print(f"{name} round {n + 1}: without events {without:,.0f} tx/s, with {with_events:,.0f} tx/s:"
                  f" x{with_events / without:.3f}", flush=True)  # fmt: skip
        print(f"{name}: with events x{statistics.median(ratios):.3f} of without (median of {args.rounds})", flush=True)


if __name__ == "__main__":
    main()
