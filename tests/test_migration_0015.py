"""Migration 0015 on a database of its own: the order statement gets its planner setting and the
new look-ups, a downgrade gives back 0014's functions exactly, and an upgrade again."""

from __future__ import annotations

from pathlib import Path

from ordersvc import db_functions
from tests.test_migration_0012 import migrate, scratch_database, sql

__all__ = ["scratch_database"]  # the fixture

BEFORE, REVISION = "0014_one_order_statement", "0015_plans_any_statistics"
VERSIONS = Path(__file__).parents[1] / "alembic" / "versions"
CHANGED = ("ordersvc_place_orders", "ordersvc_ask_consents")  # by this revision
# The functions 0014 installed (later revisions add others, which 0014 to 0019 do not know).
AT_0014 = sorted(p.stem for p in (VERSIONS / "0014_functions").glob("*.sql"))


def frozen(folder: str, name: str) -> db_functions.DatabaseFunction:
    """A function as a migration froze it (`alembic/versions/<folder>/<name>.sql`)."""
    return db_functions.DatabaseFunction(name, VERSIONS / folder / f"{name}.sql")


def as_of(revision_folders: dict[str, str], name: str) -> tuple[str, list[str] | None]:
    """What `installed` shows for a function as the given frozen copy has it."""
    function = frozen(revision_folders.get(name, "0014_functions"), name)
    return function.body, function.settings or None


def installed(url: str) -> dict[str, tuple[str, list[str] | None]]:
    rows = sql(url, "SELECT proname, prosrc, proconfig FROM pg_proc WHERE proname LIKE 'ordersvc%'")
    return {r["proname"]: (r["prosrc"], r["proconfig"]) for r in rows}


def test_up_down_and_up_again(scratch_database: str) -> None:
    url = scratch_database
    migrate(url, REVISION)
    now = installed(url)
    assert sorted(now) == AT_0014
    for name in AT_0014:
        assert now[name] == as_of(dict.fromkeys(CHANGED, "0015_functions"), name)
    assert now["ordersvc_place_orders"][1] == ["enable_seqscan=off"]

    migrate(url, BEFORE, down=True)
    back = installed(url)
    for name in CHANGED:
        assert back[name] == as_of({}, name)
        assert back[name][1] is None

    migrate(url, REVISION)
    assert installed(url) == now
