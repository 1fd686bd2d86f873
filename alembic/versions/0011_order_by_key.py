"""An order from an API key to a confirmed recipient as one statement, run without BEGIN/COMMIT.

The load benchmark left one cost to cut on the order path: round trips. A legacy order to a
confirmed recipient took four (BEGIN, the key lookup, `ordersvc_place_order`, COMMIT), with the
account row locked from the third to the end of the fourth. `ordersvc_place_order_by_key` does
the key check and the order in one statement, which the service sends in autocommit: one round
trip, and the account row is locked only while the statement runs.

It decides nothing the services have not decided before:
- the key: the active key with this prefix whose SHA-256 is the given one, of an account that is
  not disabled. Comparing the digest in SQL is safe: a timing difference tells at most how many
  leading bytes of a SHA-256 digest matched, which gives no way to build a key;
- the recipient: the address lock (shared), the suppression check in a statement of its own,
  then the pair's consent row, locked. Only a `confirmed` pair goes on, as `pending`. For any
  other state (or no row yet) it writes nothing and says `full_path`: the caller places the order
  the usual way, where the consent rules live;
- the rest is `ordersvc_place_order` with the status decided: the account row, the balance
  check, the order, its event, the debit, the counters.

The request's time limit cannot cancel a statement that may be committing (the client would be
told "not completed" about an order that was placed), so the caller passes what is left of it as
the statement's `lock_timeout`: a wait for a lock beyond it fails the statement, and nothing is
written.

Revision ID: 0011_order_by_key
Revises: 0010_self_service_accounts
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_order_by_key"
down_revision: str | None = "0010_self_service_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLACE_ORDER_BY_KEY = r"""
CREATE OR REPLACE FUNCTION ordersvc_place_order_by_key(
    p_prefix text, p_key_hash bytea, p_public_id text, p_email text, p_quantity integer, p_price_mills bigint,
    p_lock_timeout_ms integer)
RETURNS TABLE (outcome text, account_id bigint, order_id bigint, order_status text, created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_mailbox text := translate(lower(p_email), U&'\03C2', U&'\03C3');
    v_account bigint;
    v_consent text;
    v_placed record;
BEGIN
    IF p_lock_timeout_ms IS NOT NULL THEN
        -- What is left of the request's time: no lock is awaited beyond it (55P03 instead).
        PERFORM set_config('lock_timeout', greatest(p_lock_timeout_ms, 1)::text, true);
    END IF;
    SELECT k.account_id INTO v_account FROM api_keys k JOIN accounts a ON a.id = k.account_id
        WHERE k.prefix = p_prefix AND k.key_hash = p_key_hash AND k.revoked_at IS NULL AND a.disabled_at IS NULL;
    IF v_account IS NULL THEN
        outcome := 'invalid_key';
        RETURN NEXT;
        RETURN;
    END IF;
    account_id := v_account;
    -- The consent gate of `ordersvc_consent_gate`, without creating a row.
    PERFORM pg_advisory_xact_lock_shared(hashtext(v_mailbox));
    IF EXISTS (SELECT 1 FROM suppressions s WHERE s.email = v_mailbox) THEN
        outcome := 'opted_out';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT c.status INTO v_consent FROM recipient_consents c
        WHERE c.account_id = v_account AND c.email = v_mailbox
        FOR UPDATE;
    IF v_consent IS DISTINCT FROM 'confirmed' THEN
        outcome := 'full_path';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO v_placed
        FROM ordersvc_place_order(v_account, p_public_id, p_email, p_quantity, p_price_mills, 'pending');
    outcome := v_placed.outcome;
    order_id := v_placed.order_id;
    order_status := v_placed.order_status;
    created_at := v_placed.created_at;
    RETURN NEXT;
END
$$;
"""


def upgrade() -> None:
    op.execute(PLACE_ORDER_BY_KEY)


def downgrade() -> None:
    op.execute("DROP FUNCTION ordersvc_place_order_by_key(text, bytea, text, text, integer, bigint, integer)")
