"""The order path's two locking sequences as server-side functions: one round trip each.

The load benchmark showed placing an order spent its time on round trips and per-statement
Python, not in PostgreSQL: ten statements, each a network turn and an ORM execution. The rules
stay in Python (the services decide what a consent state means and what to refuse); these
functions only run, in one call, sequences whose order matters:

- `ordersvc_consent_gate`: the address lock (shared; an opt-out takes it exclusive), then the
  suppression check in a statement of its own (PL/pgSQL takes a new snapshot per statement in
  READ COMMITTED, so an opt-out that committed while the lock was awaited is seen), then the
  pair's consent row, created if new and locked.
- `ordersvc_place_order`: with no status given, the gate first; a confirmed pair's order goes on
  as `pending`, any other consent state returns to the caller, which decides the status and
  calls again with it. Then the account row locked (FOR NO KEY UPDATE) and its balance checked,
  the order inserted (unless its public id is taken), its `placed` event, the ledger's debit
  payment and the balance and counter move, exactly as `ledger.post_payment` writes them. An
  order to a confirmed recipient is thus one round trip.

Revision ID: 0009_order_path_functions
Revises: 0008_account_counters
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_order_path_functions"
down_revision: str | None = "0008_account_counters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSENT_GATE = r"""
CREATE OR REPLACE FUNCTION ordersvc_consent_gate(p_account_id bigint, p_email text)
RETURNS TABLE (suppressed boolean, consent_id bigint, consent_status text,
               mailed_at timestamptz, expires_at timestamptz, mailbox text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    -- The mailbox key: lower(), with the final sigma folded like any sigma.
    v_mailbox text := translate(lower(p_email), U&'\03C2', U&'\03C3');
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(v_mailbox));
    IF EXISTS (SELECT 1 FROM suppressions s WHERE s.email = v_mailbox) THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::text, NULL::timestamptz, NULL::timestamptz, v_mailbox;
        RETURN;
    END IF;
    INSERT INTO recipient_consents (account_id, email, status) VALUES (p_account_id, v_mailbox, 'requested')
        ON CONFLICT ON CONSTRAINT uq_recipient_consents_account_email DO NOTHING;
    RETURN QUERY
        SELECT false, c.id, c.status, c.mailed_at, c.expires_at, c.email FROM recipient_consents c
        WHERE c.account_id = p_account_id AND c.email = v_mailbox
        FOR UPDATE;
END
$$;
"""

PLACE_ORDER = r"""
CREATE OR REPLACE FUNCTION ordersvc_place_order(
    p_account_id bigint, p_public_id text, p_email text, p_quantity integer, p_price_mills bigint, p_status text)
RETURNS TABLE (outcome text, order_id bigint, order_status text, created_at timestamptz,
               consent_id bigint, consent_status text, mailed_at timestamptz, expires_at timestamptz, mailbox text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_gate record;
    v_balance bigint;
BEGIN
    -- One row comes back; its columns not set below are NULL.
    order_status := p_status;
    IF order_status IS NULL THEN
        -- No status decided yet: the consent gate first. A confirmed pair's order is pending at
        -- once; any other state goes back to the caller, which decides (the rules are there).
        SELECT * INTO v_gate FROM ordersvc_consent_gate(p_account_id, p_email);
        IF v_gate.suppressed THEN
            outcome := 'opted_out';
            RETURN NEXT;
            RETURN;
        END IF;
        IF v_gate.consent_status <> 'confirmed' THEN
            outcome := 'consent_pending';
            consent_id := v_gate.consent_id;
            consent_status := v_gate.consent_status;
            mailed_at := v_gate.mailed_at;
            expires_at := v_gate.expires_at;
            mailbox := v_gate.mailbox;
            order_status := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
        order_status := 'pending';
    END IF;
    -- FOR NO KEY UPDATE, not FOR UPDATE: it serialises debits (it conflicts with itself and with
    -- the balance UPDATE) but not with the KEY SHARE locks that inserting rows referencing the
    -- account takes (an idempotency key claimed earlier in the transaction, say).
    SELECT a.balance_mills INTO v_balance FROM accounts a WHERE a.id = p_account_id FOR NO KEY UPDATE;
    IF NOT FOUND OR v_balance < p_price_mills THEN
        outcome := CASE WHEN v_balance IS NULL THEN 'no_account' ELSE 'insufficient_balance' END;
        order_status := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO orders AS o (public_id, account_id, email, quantity, price_mills, status)
        VALUES (p_public_id, p_account_id, p_email, p_quantity, p_price_mills, order_status)
        ON CONFLICT (public_id) DO NOTHING
        RETURNING o.id, o.created_at INTO order_id, created_at;
    IF order_id IS NULL THEN
        outcome := 'public_id_taken';
        order_status := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO order_events (order_id, from_status, to_status, reason)
        VALUES (order_id, NULL, order_status, 'placed');
    UPDATE accounts a SET balance_mills = a.balance_mills - p_price_mills,
                          payments_count = a.payments_count + 1,
                          orders_count = a.orders_count + 1
        WHERE a.id = p_account_id;
    INSERT INTO payments (account_id, kind, amount_mills, email, order_id)
        VALUES (p_account_id, 'order', -p_price_mills, p_email, order_id);
    outcome := 'placed';
    RETURN NEXT;
END
$$;
"""


def upgrade() -> None:
    op.execute(CONSENT_GATE)
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute("DROP FUNCTION ordersvc_place_order(bigint, text, text, integer, bigint, text)")
    op.execute("DROP FUNCTION ordersvc_consent_gate(bigint, text)")
