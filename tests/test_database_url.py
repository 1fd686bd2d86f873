"""`DATABASE_URL` as libpq writes it, several hosts included (a cluster's members)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect
from sqlalchemy.engine import make_url

from ordersvc.db import to_asyncpg_url


def connect_args(url: str) -> dict[str, object]:
    _, kwargs = dialect().create_connect_args(make_url(to_asyncpg_url(url)))
    return dict(kwargs)


def test_several_hosts_are_tried_in_turn_with_the_session_attributes_asked() -> None:
    args = connect_args(
        "postgresql://app:s3cret@127.0.0.1:15400,127.0.0.1:15401,db3.internal:15402/ordersvc"
        "?target_session_attrs=read-write"
    )
    assert args == {
        "host": ["127.0.0.1", "127.0.0.1", "db3.internal"],
        "port": [15400, 15401, 15402],
        "user": "app",
        "password": "s3cret",
        "database": "ordersvc",
        "target_session_attrs": "read-write",
    }


def test_a_host_without_a_port_takes_postgresqls_own() -> None:
    args = connect_args("postgres://app@a,b:6432/db")
    assert (args["host"], args["port"]) == (["a", "b"], [5432, 6432])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5433/db", {"host": "h", "port": 5433, "user": "u", "database": "db"}),
        ("postgresql://u@h/db?sslmode=require", {"host": "h", "user": "u", "database": "db", "ssl": "require"}),
    ],
)
def test_one_host_is_as_before(url: str, expected: dict[str, object]) -> None:
    assert connect_args(url) == expected


def test_another_database_is_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        to_asyncpg_url("mysql://u@a,b/db")
