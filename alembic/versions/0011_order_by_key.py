"""Orders from API keys to confirmed recipients, many in one statement, run without BEGIN/COMMIT.

The load benchmark left one cost on the order path: round trips and transactions. A legacy order
to a confirmed recipient took four round trips (BEGIN, the key lookup, `ordersvc_place_order`,
COMMIT), with the account row locked from the third to the end of the fourth, and a commit (a WAL
flush) each. `ordersvc_place_orders_by_key` checks the keys and places a batch of such orders in
one statement, which the service sends in autocommit: the orders that arrive while one batch is
in flight go together in the next (group commit). One round trip and one commit for the batch,
and a hot account's row is locked once for all of its orders in it.

Each order is decided alone, and as the full path would decide it:
- the key: the active key with this prefix whose SHA-256 is the given one, of an account that is
  not disabled (else `invalid_key`). Comparing the digest in SQL is safe: a timing difference
  tells at most how many leading bytes of a SHA-256 digest matched, which gives no way to build
  a key;
- the recipient: the address lock (shared), the suppression check in a statement of its own
  (`opted_out`), then the pair's consent row, locked. Only a `confirmed` pair goes on, as
  `pending`. For any other state (or no row yet) nothing is written for that order and it says
  `full_path`: the caller places it the usual way, where the consent rules live;
- the rest is `ordersvc_place_order` with the status decided: the account row, the balance check
  (`insufficient_balance`), the order, its event, the debit, the counters.

Locks: first every address lock of the batch (shared, in address order), then account by account
in ascending id, the consent rows in address order, then the account row (the full path's order:
address, consent, account). So batches do not wait on each other in a cycle, and an opt-out (its
address lock exclusive, then the accounts it refunds, in id order) never waits for a batch that
itself waits for a row the opt-out holds.

The requests' time limit cannot cancel a statement that may be committing (a client would be told
"not completed" about an order that was placed), so the caller passes what is left of the
shortest as the statement's `lock_timeout`: a wait for a lock beyond it fails the statement, and
nothing is written.

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

PLACE_ORDERS_BY_KEY = r"""
CREATE OR REPLACE FUNCTION ordersvc_place_orders_by_key(
    p_prefixes text[], p_key_hashes bytea[], p_public_ids text[], p_emails text[], p_quantities integer[],
    p_prices bigint[], p_lock_timeout_ms integer)
RETURNS TABLE (idx integer, outcome text, account_id bigint, order_id bigint, order_status text,
               created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_accounts bigint[];
    v_mailboxes text[];
    v_group record;
    v_mailbox text;
    v_suppressed text[];
    v_confirmed text[];
    v_i integer;
    v_placed record;
BEGIN
    IF p_lock_timeout_ms IS NOT NULL THEN
        -- What is left of the requests' time: no lock is awaited beyond it (55P03 instead).
        PERFORM set_config('lock_timeout', greatest(p_lock_timeout_ms, 1)::text, true);
    END IF;
    -- Each order's account, by its key (NULL: no such active key of an enabled account), and
    -- its mailbox key (lower(), the final sigma folded, as `ordersvc_consent_gate` keys it).
    v_accounts := ARRAY(
        SELECT (SELECT k.account_id FROM api_keys k JOIN accounts a ON a.id = k.account_id
                WHERE k.prefix = p_prefixes[i] AND k.key_hash = p_key_hashes[i]
                  AND k.revoked_at IS NULL AND a.disabled_at IS NULL)
        FROM generate_subscripts(p_prefixes, 1) AS i ORDER BY i);
    v_mailboxes := ARRAY(
        SELECT translate(lower(p_emails[i]), U&'\03C2', U&'\03C3')
        FROM generate_subscripts(p_emails, 1) AS i ORDER BY i);
    FOR v_i IN 1 .. coalesce(array_length(p_prefixes, 1), 0) LOOP
        IF v_accounts[v_i] IS NULL THEN
            RETURN QUERY SELECT v_i, 'invalid_key', NULL::bigint, NULL::bigint, NULL::text, NULL::timestamptz;
        END IF;
    END LOOP;
    -- Every address lock first (shared, in address order), before any row lock: an opt-out
    -- (the address lock exclusive, then the accounts it refunds) never waits for a batch that
    -- itself waits for an account row. Then account by account in ascending id: the consent rows
    -- in address order, then the account row (as the full path: consent, then account).
    FOR v_mailbox IN
        SELECT DISTINCT u.mailbox FROM unnest(v_accounts, v_mailboxes) AS u(account, mailbox)
        WHERE u.account IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock_shared(hashtext(v_mailbox));
    END LOOP;
    FOR v_group IN
        SELECT u.account AS account, array_agg(DISTINCT u.mailbox ORDER BY u.mailbox) AS mailboxes,
               array_agg(u.i ORDER BY u.i) AS orders
        FROM unnest(v_accounts, v_mailboxes) WITH ORDINALITY AS u(account, mailbox, i)
        WHERE u.account IS NOT NULL
        GROUP BY u.account ORDER BY u.account
    LOOP
        -- A statement of its own after the address locks: its snapshot sees an opt-out that
        -- committed while they were awaited.
        v_suppressed := ARRAY(SELECT s.email FROM suppressions s WHERE s.email = ANY (v_group.mailboxes));
        v_confirmed := ARRAY(
            SELECT c.email FROM (
                SELECT c.email, c.status FROM recipient_consents c
                WHERE c.account_id = v_group.account AND c.email = ANY (v_group.mailboxes)
                ORDER BY c.email FOR UPDATE) c
            WHERE c.status = 'confirmed');
        FOREACH v_i IN ARRAY v_group.orders LOOP
            idx := v_i;
            account_id := v_group.account;
            order_id := NULL;
            order_status := NULL;
            created_at := NULL;
            IF v_mailboxes[v_i] = ANY (v_suppressed) THEN
                outcome := 'opted_out';
            ELSIF NOT v_mailboxes[v_i] = ANY (v_confirmed) THEN
                outcome := 'full_path';
            ELSE
                SELECT * INTO v_placed FROM ordersvc_place_order(
                    v_group.account, p_public_ids[v_i], p_emails[v_i], p_quantities[v_i], p_prices[v_i], 'pending');
                outcome := v_placed.outcome;
                order_id := v_placed.order_id;
                order_status := v_placed.order_status;
                created_at := v_placed.created_at;
            END IF;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    op.execute(PLACE_ORDERS_BY_KEY)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION ordersvc_place_orders_by_key(text[], bytea[], text[], text[], integer[], bigint[], integer)"
    )
