"""Recovery codes at rest: salted and slow to try, instead of the bare SHA-256 of 40 random bits.

Up to this revision a recovery code was stored as the SHA-256 of its ten hex digits: with the
database, every code of every account could be found by trying all 2^40 codes once (hours on a
GPU). From this revision on a code is stored as Argon2id (8 MiB, 2 passes, a random salt per code)
of that same SHA-256 (`ordersvc.accounts.second_factor`), so the rows already stored are hashed
again here without knowing the codes, and keep working.

Written here rather than imported: a migration must do tomorrow what it does today.

TOTP secrets are sealed under the service's secret key, which a migration does not have: the server
seals the plain-text ones at start-up (`second_factor.reseal_totp_secrets`).

Revision ID: 0013_secrets_at_rest
Revises: 0012_deposits_hardening
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from argon2 import PasswordHasher

revision: str = "0013_secrets_at_rest"
down_revision: str | None = "0012_deposits_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASHER = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)
SHA256_BYTES = 32
BATCH = 500


def rehash_unsalted_codes(bind: sa.Connection) -> int:
    """Hash every unsalted (bare SHA-256) recovery code again with Argon2id; returns how many."""
    done = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, code_hash FROM recovery_codes WHERE length(code_hash) = :n ORDER BY id LIMIT :batch"),
            {"n": SHA256_BYTES, "batch": BATCH},
        ).all()
        if not rows:
            return done
        bind.execute(
            sa.text("UPDATE recovery_codes SET code_hash = :hashed WHERE id = :id"),
            [{"id": row_id, "hashed": HASHER.hash(bytes(digest)).encode()} for row_id, digest in rows],
        )
        done += len(rows)


def upgrade() -> None:
    rehash_unsalted_codes(op.get_bind())


def downgrade() -> None:
    # The codes themselves were never stored: hashed rows cannot become bare SHA-256 again. The
    # older code refuses them (its users enrol again); nothing else changes.
    pass
