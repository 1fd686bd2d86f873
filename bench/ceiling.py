"""The database's ceiling for placing an order: pgbench on the same server, in the same run.

The ceiling is the place-order transaction as plain SQL done well, in six round trips (BEGIN,
four statements, COMMIT), with every check the service makes for an order to a confirmed
recipient. It is swept over client counts and the fastest count is the ceiling, separately for
random accounts among the 1,000 and for one account."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass

from seeding import RECIPIENT, psql, tool

# The key lookup takes the recipient's address lock (shared); the next statement checks
# suppression and locks the pair's consent row (a fresh snapshot after the lock); one UPDATE
# locks the account, checks the balance and debits it; one statement inserts the order, its event
# and its payment. The account row stays locked from the UPDATE to COMMIT: two round trips.
PLACE_ORDER_TRANSACTION = """
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
    VALUES (bench_public_id(), :aid, '{RECIPIENT}', 500, 500, 'pending')
    RETURNING id
), e AS (
    INSERT INTO order_events (order_id, from_status, to_status, reason) SELECT id, NULL, 'pending', 'placed' FROM o
)
INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
  SELECT :aid, 'order', -500, '{RECIPIENT}', id FROM o;
END;
""".replace("{RECIPIENT}", RECIPIENT)

# Optional: the service's own one-statement order of migration 0011 (a batch of one), measured only
# where the database has that function with that signature. It is an internal of the service, so
# the bench skips it when the service no longer has it; nothing else depends on it.
OWN_SQL_FUNCTION = "ordersvc_place_orders_by_key(text[],bytea[],text[],text[],integer[],bigint[],integer)"
OWN_SQL = """
\\set aid random(:lo, :hi)
SELECT idx, outcome FROM ordersvc_place_orders_by_key(
  ARRAY[(SELECT prefix FROM api_keys WHERE account_id = :aid)],
  ARRAY[(SELECT key_hash FROM api_keys WHERE account_id = :aid)],
  ARRAY[upper(lpad(to_hex(nextval('bench_pgbench_ids')), 8, '0'))], ARRAY['{RECIPIENT}'], ARRAY[500],
  ARRAY[500::bigint], NULL);
""".replace("{RECIPIENT}", RECIPIENT)


def pgbench(url: str, script: str, lo: int, hi: int, clients: int, seconds: int) -> float:
    """Transactions per second of `script` at `clients` connections, accounts lo..hi."""
    # pgbench's order ids come from their own range (0x80000000...), apart from the seeded orders;
    # the service's random ids step around any they meet.
    psql(url, "CREATE SEQUENCE IF NOT EXISTS bench_pgbench_ids START 2147483648")
    # Between the rows, pgbench runs after the service placed orders under random ids: the next
    # id of its range that no order has (one sequence step and one index probe, about 1% of the
    # transaction), so that no run aborts on a taken id.
    psql(
        url,
        """
        CREATE OR REPLACE FUNCTION bench_public_id() RETURNS text LANGUAGE plpgsql AS $$
        DECLARE v text;
        BEGIN
            LOOP
                v := upper(lpad(to_hex(nextval('bench_pgbench_ids')), 8, '0'));
                EXIT WHEN NOT EXISTS (SELECT 1 FROM orders WHERE public_id = v);
            END LOOP;
            RETURN v;
        END $$
        """,
    )
    psql(url, "CHECKPOINT")  # every run starts with no earlier run's writes left to flush
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script)
    out = subprocess.run(
        [tool("pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
         "-T", str(seconds), "-D", f"lo={lo}", "-D", f"hi={hi}", "-f", file.name, url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert match, out
    return float(match.group(1))


@dataclass
class Sweep:
    by_clients: dict[int, float]

    @property
    def best(self) -> float:
        return max(self.by_clients.values())

    @property
    def best_clients(self) -> int:
        return max(self.by_clients, key=lambda c: self.by_clients[c])


def sweep(url: str, script: str, lo: int, hi: int, clients: list[int], seconds: int) -> Sweep:
    return Sweep({c: pgbench(url, script, lo, hi, c, seconds) for c in clients})


def own_sql_available(url: str) -> bool:
    return psql(url, f"SELECT to_regprocedure('{OWN_SQL_FUNCTION}') IS NOT NULL") == "t"
