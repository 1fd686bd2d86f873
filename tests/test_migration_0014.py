"""Migration 0014 on a database of its own: an upgrade from 0013 with rows in it, a downgrade
back (the old order functions again, the outbox as it was), and an upgrade again."""

from __future__ import annotations

from tests.test_migration_0012 import migrate, scratch_database, sql
from tests.test_migration_0015 import AT_0014

__all__ = ["scratch_database"]  # the fixture

BEFORE, REVISION = "0013_secrets_at_rest", "0014_one_order_statement"


def functions(url: str) -> set[str]:
    return {r["proname"] for r in sql(url, "SELECT proname FROM pg_proc WHERE proname LIKE 'ordersvc%'")}


def test_up_down_and_up_again_with_rows_in_the_way(scratch_database: str) -> None:
    url = scratch_database
    migrate(url, BEFORE)
    account = sql(url, "INSERT INTO accounts (email, balance_mills) VALUES ('m@example.com', 0) RETURNING id")[0][0]
    sql(
        url,
        "INSERT INTO outbox (message_id, to_email, subject, body_text, body_html, headers)"
        " VALUES ('<m1@ordersvc>', 'r@example.com', 's', 't', '<p>h</p>', '{}')",
    )
    old = {"ordersvc_place_order", "ordersvc_place_orders_by_key", "ordersvc_consent_gate"}
    assert functions(url) == old

    migrate(url, REVISION)
    assert functions(url) == set(AT_0014)
    # A credit through the ledger's one balance move, and an order through the new statement.
    sql(
        url,
        "SELECT ordersvc_post_payments(ARRAY[$1::bigint], ARRAY['credit'], ARRAY[5000::bigint], ARRAY[NULL::text],"
        " ARRAY[NULL::bigint], ARRAY[NULL::text], ARRAY[NULL::bigint], ARRAY['m'])",
        account,
    )
    placed = sql(
        url,
        "SELECT outcome::text, order_status FROM ordersvc_place_orders(ARRAY[NULL::text], ARRAY[NULL::bytea],"
        " ARRAY[$1::bigint], ARRAY['0A0B0C0D'], ARRAY['new@example.com'], ARRAY[1000], ARRAY[1000::bigint],"
        " ARRAY[NULL::text], ARRAY[NULL::bytea], NULL, interval '24 hours', interval '72 hours')",
        account,
    )
    assert [tuple(r) for r in placed] == [("placed", "awaiting confirmation")]
    queued = sql(url, "SELECT subject, consent_id IS NOT NULL, request_orders FROM outbox ORDER BY id")
    assert [tuple(r) for r in queued] == [("s", False, None), (None, True, 1)]  # the new one: written when sent
    assert sql(url, "SELECT balance_mills FROM accounts WHERE id = $1", account)[0][0] == 4000

    migrate(url, BEFORE, down=True)
    assert functions(url) == old
    # The unwritten request went, and its pair is asked again by the old sweep.
    assert [r["subject"] for r in sql(url, "SELECT subject FROM outbox")] == ["s"]
    assert sql(url, "SELECT mailed_at FROM recipient_consents")[0][0] is None

    migrate(url, REVISION)
    assert functions(url) == set(AT_0014)
