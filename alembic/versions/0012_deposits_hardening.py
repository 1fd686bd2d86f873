"""Deposits hardening: on-chain hashes in one canonical form per network; recyclable addresses.

Hashes. The on-chain unique key (network, tx hash, address) compared hashes as written, so
`0xDEADBEEF...` and `0xdeadbeef...` of one transfer were two deposits, each credited. From this
revision on the service stores every hash of a network we take in its canonical form
(`ordersvc.deposits.hashes`: 64 lower-case hex digits, `0x`-prefixed on USDT-ERC20 only). This
migration rewrites the rows already stored to that form (and a chain watcher row's external id,
which embeds the hash), with one exception: rows that would become the same transfer as another
row. Those are not merged, deleted or rewritten: money may have been credited twice, and only
the operator can tell what happened. One row of each such group holds the canonical spelling
(the one already canonical, else the oldest), so that a redelivery is a duplicate from now on;
every row of the group is recorded in `deposit_hash_collisions` and logged as a WARNING, for
`ordersvc deposits collisions` (the README's "Money in" says what the operator does). Hashes that
are not 64 hex digits are left as they are (logged): new ones are refused at the door.

Addresses are in the key too: Ethereum and bech32 addresses are case-insensitive and are
rewritten lower case, in deposits (with the hashes, by the same rule for collisions) and in the
pool (an address the pool holds in two spellings may be two accounts'; both rows are left as they
are and logged as a WARNING, `DEPOSIT ADDRESS COLLISION`).

Recycling. `deposit_addresses.released_at` and `deposit_address_releases` (who held an address
that recycling took back, and when), for `ordersvc deposits recycle`.

Revision ID: 0012_deposits_hardening
Revises: 0011_order_by_key
Create Date: 2026-11-26
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_deposits_hardening"
down_revision: str | None = "0011_order_by_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")

# The canonical form of `ordersvc.deposits.hashes.normalise_tx_hash`, in SQL (NULL when the row's
# hash is not 64 hex digits or its network is not one we take). Written here rather than imported:
# a migration must do tomorrow what it does today.
CANONICAL = r"""
CASE WHEN network IN ('USDT-TRC20', 'USDT-ERC20', 'BTC', 'LTC') AND tx_hash ~ '^(0[xX])?[0-9a-fA-F]{64}$'
     THEN CASE WHEN network = 'USDT-ERC20' THEN '0x' ELSE '' END || lower(right(tx_hash, 64))
END
"""

# And of `normalise_address`: Ethereum and bech32 addresses are lower case; others as they are.
CANONICAL_ADDRESS = r"""
CASE WHEN network = 'USDT-ERC20' AND address ~ '^0[xX][0-9a-fA-F]{40}$' THEN '0x' || lower(right(address, 40))
     WHEN network IN ('BTC', 'LTC') AND lower(address) ~ '^(bc1|tb1|bcrt1|ltc1|tltc1|rltc1)' THEN lower(address)
     ELSE address
END
"""

PLAN = f"""
CREATE TEMPORARY TABLE deposit_hash_plan ON COMMIT DROP AS
SELECT id, processor, network, address, tx_hash, canonical, canonical_address,
       -- Rows that would be one transfer under the unique key (its rows have an address).
       address IS NOT NULL AND count(*) OVER transfer > 1 AS collides,
       -- The one row of a colliding group that holds the canonical spelling: the one already
       -- canonical (the unique key allows at most one), else the oldest.
       row_number() OVER (PARTITION BY network, canonical, canonical_address
                          ORDER BY tx_hash = canonical AND address = canonical_address DESC, id) = 1 AS keeper
FROM (SELECT id, processor, network, address, tx_hash, {CANONICAL} AS canonical,
             {CANONICAL_ADDRESS} AS canonical_address FROM deposits
      WHERE tx_hash IS NOT NULL) hashes
WHERE canonical IS NOT NULL
WINDOW transfer AS (PARTITION BY network, canonical, canonical_address)
"""  # noqa: S608 (built from constants only)

# The pool: an address spelt two ways is one address, which may have been handed to two accounts.
# Alone, it takes its one spelling; spelt twice, both rows stay as they are and are reported.
POOL_COLLISIONS = f"""
SELECT network, {CANONICAL_ADDRESS} AS canonical_address, array_agg(address ORDER BY id) AS spellings,
       array_agg(account_id ORDER BY id) AS accounts
FROM deposit_addresses GROUP BY network, canonical_address HAVING count(*) > 1
"""  # noqa: S608 (built from constants only)

NORMALISE_POOL = f"""
UPDATE deposit_addresses a SET address = p.canonical_address
FROM (SELECT id, {CANONICAL_ADDRESS} AS canonical_address,
             count(*) OVER (PARTITION BY network, {CANONICAL_ADDRESS}) AS spellings
      FROM deposit_addresses) p
WHERE a.id = p.id AND p.spellings = 1 AND a.address <> p.canonical_address
"""  # noqa: S608 (built from constants only)

RECORD_COLLISIONS = """
INSERT INTO deposit_hash_collisions (deposit_id, canonical_tx_hash)
SELECT id, canonical FROM deposit_hash_plan WHERE collides
"""

NORMALISE = """
UPDATE deposits d
SET tx_hash = p.canonical,
    address = p.canonical_address,
    external_id = CASE
        WHEN p.processor = 'chain' AND d.external_id = d.network || ':' || d.tx_hash || ':' || d.address
        THEN d.network || ':' || p.canonical || ':' || p.canonical_address
        ELSE d.external_id
    END
FROM deposit_hash_plan p
WHERE d.id = p.id AND (d.tx_hash <> p.canonical OR d.address <> p.canonical_address) AND (NOT p.collides OR p.keeper)
"""

COLLISIONS = """
SELECT d.id, d.processor, d.network, d.address, d.tx_hash, d.status, d.account_id, d.amount_mills, c.canonical_tx_hash
FROM deposit_hash_collisions c JOIN deposits d ON d.id = c.deposit_id
ORDER BY c.canonical_tx_hash, d.id
"""

UNREADABLE = f"""
SELECT count(*) FROM deposits
WHERE tx_hash IS NOT NULL AND network IN ('USDT-TRC20', 'USDT-ERC20', 'BTC', 'LTC') AND ({CANONICAL}) IS NULL
"""  # noqa: S608 (built from constants only)


def upgrade() -> None:
    op.create_table(
        "deposit_hash_collisions",
        sa.Column("deposit_id", sa.BigInteger(), sa.ForeignKey("deposits.id"), primary_key=True),
        sa.Column("canonical_tx_hash", sa.Text(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")),
    )
    op.add_column("deposit_addresses", sa.Column("released_at", sa.DateTime(timezone=True)))
    op.create_table(
        "deposit_address_releases",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deposit_address_releases_network_address", "deposit_address_releases", ["network", "address"])

    bind = op.get_bind()
    bind.execute(sa.text(PLAN))
    bind.execute(sa.text(RECORD_COLLISIONS))
    bind.execute(sa.text(NORMALISE))
    for row in bind.execute(sa.text(COLLISIONS)).mappings():
        logger.warning(
            "DEPOSIT HASH COLLISION: deposit %s (%s, %s, address %s, tx %s, %s, account %s, %s mills) is the "
            "same transfer as another under tx hash %s; left as it is, see `ordersvc deposits collisions`",
            row["id"], row["processor"], row["network"], row["address"], row["tx_hash"], row["status"],
            row["account_id"], row["amount_mills"], row["canonical_tx_hash"],
        )  # fmt: skip
    for row in bind.execute(sa.text(POOL_COLLISIONS)).mappings():
        logger.warning(
            "DEPOSIT ADDRESS COLLISION: %s address %s is in the pool as %s (accounts %s); left as it is: "
            "a deposit to it is credited to the account holding that exact spelling, or kept unmatched",
            row["network"], row["canonical_address"], ", ".join(row["spellings"]), row["accounts"],
        )  # fmt: skip
    bind.execute(sa.text(NORMALISE_POOL))
    unreadable = bind.execute(sa.text(UNREADABLE)).scalar_one()
    if unreadable:
        logger.warning("%s deposits have a tx hash that is not 64 hex digits: left as they are", unreadable)


def downgrade() -> None:
    # Normalised hashes stay normalised: they are the same transfers, spelt one way.
    op.drop_index("ix_deposit_address_releases_network_address", "deposit_address_releases")
    op.drop_table("deposit_address_releases")
    op.drop_column("deposit_addresses", "released_at")
    op.drop_table("deposit_hash_collisions")
