"""`db.fetch_autocommit`: the arguments that depend on the time left are made once a pooled
connection is in hand, so a wait for the pool is not counted as time to wait for locks."""

from __future__ import annotations

import asyncio

from ordersvc import db
from ordersvc.config import Settings


async def test_late_arguments_are_made_after_the_wait_for_a_connection(database_url: str) -> None:
    engine = db.create_engine(db.to_asyncpg_url(database_url), Settings(db_pool_size=1, db_max_overflow=0))
    loop = asyncio.get_running_loop()
    made_at: list[float] = []

    def late() -> tuple[object, ...]:
        made_at.append(loop.time())
        return (41,)

    try:
        async with engine.connect() as held:  # the pool's one connection, taken
            await held.exec_driver_sql("SELECT 1")
            asked_at = loop.time()
            statement = asyncio.create_task(db.fetch_autocommit(engine, "SELECT $1::int + $2::int", 1, late=late))
            await asyncio.sleep(0.3)
            assert not statement.done()
            assert made_at == []  # not made while waiting for the pool
        assert await asyncio.wait_for(statement, 10) == [(42,)]
        assert made_at[0] - asked_at >= 0.3
    finally:
        await engine.dispose()
