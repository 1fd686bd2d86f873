"""Migration 0012 on a database of its own: stored hashes are normalised, and rows that would
then be one transfer are reported and left as they are (nothing merged, nothing deleted)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from ordersvc import db

BEFORE, REVISION = "0011_order_by_key", "0012_deposits_hardening"
TRC = "ab" * 32  # a Tron txid
ETH = "cd" * 32  # an Ethereum transaction hash, without its 0x
BTC = "ef" * 32


@pytest.fixture
def scratch_database(database_url: str) -> Iterator[str]:
    """An empty database on the test server, dropped afterwards."""
    name = f"migration_{uuid.uuid4().hex[:12]}"
    server = make_url(database_url)

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = db._alembic_config()
    config.attributes["database_url"] = url
    (command.downgrade if down else command.upgrade)(config, revision)


def sql(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


# (name, processor, network, address, tx hash, status) of the rows stored before 0012.
ROWS = [
    ("trc_canonical", "chain", "USDT-TRC20", "Taddr", TRC, "credited"),
    ("trc_upper", "nowpayments", "USDT-TRC20", "Taddr", TRC.upper(), "credited"),  # the same transfer
    ("eth_prefixed_upper", "chain", "USDT-ERC20", "0xaddr", "0X" + ETH.upper(), "credited"),
    ("eth_bare", "chain", "USDT-ERC20", "0xaddr", ETH, "unmatched"),  # the same transfer, none canonical
    ("btc_upper", "chain", "BTC", "bc1qaddr", BTC.upper(), "credited"),  # alone: normalised
    ("btc_unreadable", "chain", "BTC", "bc1qother", "short", "unmatched"),
    ("bsc", "nowpayments", "usdtbsc", "0xbsc", "0xABC", "unmatched"),  # not a network we take
    ("trc_no_address", "nowpayments", "USDT-TRC20", None, "0x" + TRC.upper(), "unmatched"),
]


def seed(url: str) -> dict[str, int]:
    (account,) = sql(url, "INSERT INTO accounts (email) VALUES ('m@example.com') RETURNING id")
    ids = {}
    for name, processor, network, address, tx_hash, status in ROWS:
        external_id = f"{network}:{tx_hash}:{address}" if processor == "chain" else uuid.uuid4().hex
        (row,) = sql(
            url,
            "INSERT INTO deposits (processor, external_id, network, address, tx_hash, amount_mills, status, "
            "account_id, payload) VALUES ($1, $2, $3, $4, $5, 1000, $6, $7, '{}') RETURNING id",
            processor, external_id, network, address, tx_hash, status,
            account["id"] if status == "credited" else None,
        )  # fmt: skip
        ids[name] = row["id"]
    return ids


class TestMigration0012:
    def test_normalises_hashes_and_reports_collisions_without_merging(
        self, scratch_database: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        migrate(scratch_database, BEFORE)
        ids = seed(scratch_database)
        with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
            migrate(scratch_database, REVISION)

        rows = {
            r["id"]: r
            for r in sql(scratch_database, "SELECT id, tx_hash, external_id, status, account_id FROM deposits")
        }
        assert len(rows) == len(ROWS)  # nothing deleted
        hash_of = {name: rows[i]["tx_hash"] for name, i in ids.items()}
        assert hash_of == {
            "trc_canonical": TRC,
            "trc_upper": TRC.upper(),  # left as it was: a collision
            "eth_prefixed_upper": "0x" + ETH,  # the oldest of its group takes the canonical form
            "eth_bare": ETH,  # left as it was: a collision
            "btc_upper": BTC,
            "btc_unreadable": "short",
            "bsc": "0xABC",
            "trc_no_address": TRC,
        }
        # A chain watcher row's external id carries the canonical hash too.
        assert rows[ids["eth_prefixed_upper"]]["external_id"] == f"USDT-ERC20:0x{ETH}:0xaddr"
        assert rows[ids["btc_upper"]]["external_id"] == f"BTC:{BTC}:bc1qaddr"
        assert [rows[ids[n]]["status"] for n in ("trc_upper", "eth_bare")] == ["credited", "unmatched"]

        recorded = sql(scratch_database, "SELECT deposit_id, canonical_tx_hash FROM deposit_hash_collisions")
        assert {(r["deposit_id"], r["canonical_tx_hash"]) for r in recorded} == {
            (ids["trc_canonical"], TRC),
            (ids["trc_upper"], TRC),
            (ids["eth_prefixed_upper"], "0x" + ETH),
            (ids["eth_bare"], "0x" + ETH),
        }
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        collisions = [w for w in warnings if w.startswith("DEPOSIT HASH COLLISION")]
        assert len(collisions) == 4
        assert any(f"deposit {ids['trc_upper']} " in w and "credited" in w for w in collisions)
        assert any("1 deposits have a tx hash that is not 64 hex digits" in w for w in warnings)

        # From now on a redelivery in any spelling meets the canonical row: a duplicate.
        for network, address, canonical in [("USDT-TRC20", "Taddr", TRC), ("USDT-ERC20", "0xaddr", "0x" + ETH)]:
            inserted = sql(
                scratch_database,
                "INSERT INTO deposits (processor, external_id, network, address, tx_hash, amount_mills, status, "
                "payload) VALUES ('chain', $1, $2, $3, $4, 1000, 'unmatched', '{}') "
                "ON CONFLICT DO NOTHING RETURNING id",
                uuid.uuid4().hex, network, address, canonical,
            )  # fmt: skip
            assert inserted == []

    def test_downgrade_and_upgrade_again(self, scratch_database: str) -> None:
        migrate(scratch_database, BEFORE)
        ids = seed(scratch_database)
        migrate(scratch_database, REVISION)
        migrate(scratch_database, BEFORE, down=True)
        tables = {r["tablename"] for r in sql(scratch_database, "SELECT tablename FROM pg_tables")}
        assert "deposit_hash_collisions" not in tables
        assert "deposit_address_releases" not in tables
        migrate(scratch_database, REVISION)
        recorded = {r["deposit_id"] for r in sql(scratch_database, "SELECT deposit_id FROM deposit_hash_collisions")}
        assert recorded == {ids[n] for n in ("trc_canonical", "trc_upper", "eth_prefixed_upper", "eth_bare")}


# An Ethereum address in its EIP-55 spelling, and its one canonical spelling.
ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


class TestMigration0012Addresses:
    def test_case_insensitive_addresses_take_one_spelling_and_pool_duplicates_are_reported(
        self, scratch_database: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        migrate(scratch_database, BEFORE)
        (account,) = sql(scratch_database, "INSERT INTO accounts (email) VALUES ('a@example.com') RETURNING id")
        pool = [
            ("USDT-ERC20", ETH_ADDRESS),  # alone: lower case
            ("BTC", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"),  # bech32, alone: lower case
            ("BTC", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),  # base58: case-sensitive, kept
            ("USDT-ERC20", "0x" + "AB" * 20),  # spelt twice: both kept, reported
            ("USDT-ERC20", "0x" + "ab" * 20),
        ]
        for network, address in pool:  # the first is the account's; the others are free
            held = address == ETH_ADDRESS
            sql(
                scratch_database,
                "INSERT INTO deposit_addresses (network, address, account_id, assigned_at) "
                "VALUES ($1, $2, $3, CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() END)",
                network, address, account["id"] if held else None,
            )  # fmt: skip
        sql(
            scratch_database,
            "INSERT INTO deposits (processor, external_id, network, address, tx_hash, amount_mills, status, "
            "account_id, payload) VALUES ('chain', $1, 'USDT-ERC20', $2, $3, 1000, 'credited', $4, '{}')",
            f"USDT-ERC20:0x{ETH}:{ETH_ADDRESS}", ETH_ADDRESS, "0x" + ETH, account["id"],
        )  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
            migrate(scratch_database, REVISION)

        stored = {r["address"] for r in sql(scratch_database, "SELECT address FROM deposit_addresses")}
        assert stored == {
            ETH_ADDRESS.lower(),
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
            "0x" + "AB" * 20,
            "0x" + "ab" * 20,
        }
        (deposit,) = sql(scratch_database, "SELECT address, external_id FROM deposits")
        assert (deposit["address"], deposit["external_id"]) == (
            ETH_ADDRESS.lower(),
            f"USDT-ERC20:0x{ETH}:{ETH_ADDRESS.lower()}",
        )
        reported = [r.getMessage() for r in caplog.records if "DEPOSIT ADDRESS COLLISION" in r.getMessage()]
        assert len(reported) == 1
        assert "0x" + "ab" * 20 in reported[0]
