"""Migration 0015 on a database of its own: the order statement gets its planner setting and the
new look-ups, a downgrade gives back 0014's functions exactly, and an upgrade again."""

from __future__ import annotations

from pathlib import Path

from ordersvc import db_functions
from tests.test_migration_0012 import migrate, scratch_database, sql

__all__ = ["scratch_database"]  # the fixture

BEFORE, REVISION = "0014_one_order_statement", "0015_plans_any_statistics"
FROZEN_0014 = Path(__file__).parents[1] / "alembic" / "versions" / "0014_functions"


def installed(url: str) -> dict[str, tuple[str, list[str] | None]]:
    rows = sql(url, "SELECT proname, prosrc, proconfig FROM pg_proc WHERE proname LIKE 'ordersvc%'")
    return {r["proname"]: (r["prosrc"], r["proconfig"]) for r in rows}


def body(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    return source.split("$$", 2)[1]


def test_up_down_and_up_again(scratch_database: str) -> None:
    url = scratch_database
    migrate(url, REVISION)
    now = installed(url)
    for function in db_functions.FUNCTIONS:
        assert now[function.name] == (function.body, function.settings or None)
    assert now["ordersvc_place_orders"][1] == ["enable_seqscan=off"]

    migrate(url, BEFORE, down=True)
    back = installed(url)
    for name in ("ordersvc_place_orders", "ordersvc_ask_consents"):
        assert back[name] == (body(FROZEN_0014 / f"{name}.sql"), None)

    migrate(url, REVISION)
    assert installed(url) == now
