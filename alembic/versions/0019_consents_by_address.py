"""An address's consent requests across accounts, by index (`ix_recipient_consents_email_id`):
a recipient's opt-out locks every request for the address, and the console's recipient page
lists them. Both read the whole table without it.

Built CONCURRENTLY, outside the migration's transaction: orders keep writing consent requests
while it builds, so it is safe for a rolling deploy on a large table. A build that failed half
way leaves an invalid index, which the next run drops and builds again.

Revision ID: 0019_consents_by_address
Revises: 0018_operator_console
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_consents_by_address"
down_revision: str | None = "0018_operator_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_recipient_consents_email_id"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'ix_recipient_consents_email_id' AND NOT i.indisvalid)"
            " THEN DROP INDEX ix_recipient_consents_email_id; END IF; END $$"
        )
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON recipient_consents (email, id)")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
