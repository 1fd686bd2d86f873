"""An address's consent requests across accounts, by index (`ix_recipient_consents_email_id`):
a recipient's opt-out locks every request for the address, and the console's recipient page
lists them. Both read the whole table without it.

Built in the migration's transaction, like the indexes before it, under the advisory lock that
keeps two starting servers from migrating at once (`alembic/env.py`): `CONCURRENTLY` would need
a commit first, which releases that lock. Writes to `recipient_consents` (orders to a new
recipient) wait for the build: about a second per million rows.

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


def upgrade() -> None:
    op.create_index("ix_recipient_consents_email_id", "recipient_consents", ["email", "id"])


def downgrade() -> None:
    op.drop_index("ix_recipient_consents_email_id", table_name="recipient_consents")
