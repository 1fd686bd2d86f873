"""The database runs exactly the functions' source kept beside their domains
(`ordersvc.db_functions`), and the order statement's outcomes are the same enum on both sides."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc import db_functions
from ordersvc.orders.models import OrderOutcome


async def catalog(maker: async_sessionmaker[AsyncSession], column: str) -> dict[str, object]:
    """One `pg_proc` column (`prosrc`, `proconfig`) of each of the service's functions, by name."""
    async with maker() as session:
        found = await session.execute(
            sa.text(f"SELECT proname, {column} FROM pg_proc WHERE proname = ANY(:names)"),
            {"names": [f.name for f in db_functions.FUNCTIONS]},
        )
        return dict(found.all())


async def test_every_function_in_the_database_is_its_files_source(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rows = await catalog(sessionmaker, "prosrc")
    assert sorted(rows) == sorted(f.name for f in db_functions.FUNCTIONS)  # one of each, no overloads
    for function in db_functions.FUNCTIONS:
        assert rows[function.name] == function.body, f"{function.path} differs from the database's {function.name}"


async def test_every_function_runs_with_the_settings_its_file_names(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rows = await catalog(sessionmaker, "proconfig")
    for function in db_functions.FUNCTIONS:
        assert (rows[function.name] or []) == function.settings, function.path
    # The order statement's plans do not depend on the tables' statistics (migration 0015), and
    # it and the functions a request or a worker calls plan once per connection (0016).
    assert rows["ordersvc_place_orders"] == ["enable_seqscan=off", "plan_cache_mode=force_generic_plan"]
    for name in ("ordersvc_post_payments", "ordersvc_end_order", "ordersvc_expire_consent", "ordersvc_ask_consents"):
        assert rows[name] == ["plan_cache_mode=force_generic_plan"], name


async def test_no_other_ordersvc_function_is_left_in_the_database(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        names = (await session.execute(sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'ordersvc%'"))).scalars()
        assert sorted(names) == sorted(f.name for f in db_functions.FUNCTIONS)


async def test_the_outcomes_are_one_enum_in_sql_and_python(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        labels = (
            await session.execute(sa.text("SELECT unnest(enum_range(NULL::ordersvc_order_outcome))::text"))
        ).scalars()
        assert list(labels) == [o.value for o in OrderOutcome]


def test_each_file_names_its_function() -> None:
    for function in db_functions.FUNCTIONS:
        assert f"CREATE OR REPLACE FUNCTION {function.name}(" in function.source
        assert function.source.count("CREATE OR REPLACE FUNCTION") == 1
