-- Every order, whatever its recipient's consent and with or without an idempotency key, in one
-- statement that commits on its own (autocommit): `orders.service.place` sends the orders that
-- arrive while a statement is in flight together in the next one (group commit, `batching`).
-- One round trip and one commit for the batch; each account row is locked once per batch.
--
-- Each order is decided alone, in the given order, as if sent one by one:
--   1. the caller: the active API key with this prefix and SHA-256 of an enabled account, or an
--      enabled account's id (a browser session checked by the caller): else `invalid_key`;
--   2. the idempotency key, if any: a key this account used before replays that order
--      (`replayed`, with the first answer's snapshot) when the parameters' fingerprint matches,
--      and is `idempotency_conflict` when not. A fresh key is claimed first, so a concurrent
--      statement with the same key waits for this one and then replays; a key whose order is
--      refused is left unused;
--   3. the recipient: an opted-out address is `opted_out`;
--   4. the balance: `insufficient_balance`;
--   5. the order: `pending` to a recipient who confirmed, else `awaiting confirmation`; its
--      `placed` event, its debit through `ordersvc_post_payment`, its idempotency record. A
--      public id already taken is `public_id_taken` (the caller retries with another).
-- A refused order writes nothing. The consent rules for a recipient who has not confirmed: a
-- request whose links expired before the sweep came by expires now (`ordersvc_expire_consent`,
-- its waiting orders end); a declined or expired pair is asked again; a new pair gets a request.
-- A pair with a placed order and an unmailed request is asked (`ordersvc_ask_consent`: at most
-- one message per address per `p_mail_interval`), in the same transaction as its order.
--
-- Locks, always in this order, so that statements never wait on each other in a cycle and an
-- opt-out (the address lock exclusive, then consents, orders, accounts in id order) never waits
-- for a statement that waits for it: every address lock (shared, in address order); then account
-- by account in ascending id: its idempotency keys (in key order), its consent rows (in address
-- order), the orders an expiry ends, the account row; last, the mailbox rows of the messages
-- queued (in address order).
--
-- `p_lock_timeout_ms`: what is left of the most hurried request's time; no lock is awaited
-- beyond it (SQLSTATE 55P03, and the statement wrote nothing).
CREATE OR REPLACE FUNCTION ordersvc_place_orders(
    p_prefixes text[], p_key_hashes bytea[], p_account_ids bigint[], p_public_ids text[], p_emails text[],
    p_quantities integer[], p_prices bigint[], p_idempotency_keys text[], p_fingerprints bytea[],
    p_lock_timeout_ms integer, p_mail_interval interval, p_link_lifetime interval)
RETURNS TABLE (idx integer, outcome ordersvc_order_outcome, account_id bigint, order_id bigint,
               order_status text, created_at timestamptz, snapshot jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_accounts bigint[];
    v_mailboxes text[];
    v_group record;
    v_mailbox text;
    v_key text;
    v_i integer;
    v_p integer;
    v_k integer;
    v_found record;
    v_new_id bigint;
    -- Per order, decided before its turn (a replay of an earlier statement's key): outcome.
    v_outcomes ordersvc_order_outcome[];
    v_snapshots jsonb[];
    v_order_ids bigint[];
    -- The group's idempotency keys this statement claimed, and the order that placed each (0: none yet).
    v_claimed text[];
    v_claim_placer integer[];
    -- The group's pairs: mailbox, consent id, status, mailed_at, whether this statement created
    -- the row, whether an order was placed to it.
    v_pair_mailboxes text[];
    v_pair_ids bigint[];
    v_pair_statuses text[];
    v_pair_mailed boolean[];
    v_pair_new boolean[];
    v_pair_used boolean[];
    v_suppressed text[];
    v_balance bigint;
    v_status text;
    v_asks bigint[] := '{}';
    v_ask_mailboxes text[] := '{}';
BEGIN
    IF p_lock_timeout_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(p_lock_timeout_ms, 1)::text, true);
    END IF;
    v_accounts := ARRAY(
        SELECT CASE
            WHEN p_account_ids[i] IS NOT NULL THEN
                (SELECT a.id FROM accounts a WHERE a.id = p_account_ids[i] AND a.disabled_at IS NULL)
            ELSE
                (SELECT k.account_id FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.prefix = p_prefixes[i] AND k.key_hash = p_key_hashes[i]
                   AND k.revoked_at IS NULL AND a.disabled_at IS NULL)
            END
        FROM generate_subscripts(p_emails, 1) AS i ORDER BY i);
    v_mailboxes := ARRAY(SELECT ordersvc_mailbox_key(e) FROM unnest(p_emails) WITH ORDINALITY AS u(e, i) ORDER BY i);
    v_outcomes := array_fill(NULL::ordersvc_order_outcome, ARRAY[coalesce(array_length(p_emails, 1), 0)]);
    v_snapshots := array_fill(NULL::jsonb, ARRAY[coalesce(array_length(p_emails, 1), 0)]);
    v_order_ids := array_fill(NULL::bigint, ARRAY[coalesce(array_length(p_emails, 1), 0)]);
    FOR v_i IN 1 .. coalesce(array_length(p_emails, 1), 0) LOOP
        IF v_accounts[v_i] IS NULL THEN
            RETURN QUERY SELECT v_i, 'invalid_key'::ordersvc_order_outcome, NULL::bigint, NULL::bigint, NULL::text,
                                NULL::timestamptz, NULL::jsonb;
        END IF;
    END LOOP;
    FOR v_mailbox IN
        SELECT DISTINCT u.mailbox FROM unnest(v_accounts, v_mailboxes) AS u(account, mailbox)
        WHERE u.account IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock_shared(hashtext(v_mailbox));
    END LOOP;

    FOR v_group IN
        SELECT u.account AS account, array_agg(u.i ORDER BY u.i) AS orders
        FROM unnest(v_accounts) WITH ORDINALITY AS u(account, i)
        WHERE u.account IS NOT NULL
        GROUP BY u.account ORDER BY u.account
    LOOP
        -- Idempotency keys, in key order. A key claimed here carries the fingerprint of its first
        -- order; one used before decides its orders now.
        v_claimed := '{}';
        v_claim_placer := '{}';
        FOR v_key IN
            SELECT DISTINCT p_idempotency_keys[i] FROM unnest(v_group.orders) AS i
            WHERE p_idempotency_keys[i] IS NOT NULL ORDER BY 1
        LOOP
            SELECT min(i) INTO v_i FROM unnest(v_group.orders) AS i WHERE p_idempotency_keys[i] = v_key;
            INSERT INTO idempotency_keys AS k (account_id, key, fingerprint)
                VALUES (v_group.account, v_key, p_fingerprints[v_i])
                ON CONFLICT (account_id, key) DO NOTHING
                RETURNING k.key INTO v_found;
            IF FOUND THEN
                v_claimed := v_claimed || v_key;
                v_claim_placer := v_claim_placer || 0;
                CONTINUE;
            END IF;
            -- A statement of its own: it sees the record of a statement whose claim it waited for.
            SELECT k.fingerprint, k.order_id, k.snapshot INTO v_found
                FROM idempotency_keys k WHERE k.account_id = v_group.account AND k.key = v_key;
            FOREACH v_i IN ARRAY v_group.orders LOOP
                IF p_idempotency_keys[v_i] = v_key THEN
                    IF v_found.snapshot IS NOT NULL AND v_found.fingerprint = p_fingerprints[v_i] THEN
                        v_outcomes[v_i] := 'replayed';
                        v_snapshots[v_i] := v_found.snapshot;
                        v_order_ids[v_i] := v_found.order_id;
                    ELSE
                        v_outcomes[v_i] := 'idempotency_conflict';
                    END IF;
                END IF;
            END LOOP;
        END LOOP;

        -- The recipients of the orders still to decide: a statement of its own after the address
        -- locks, so an opt-out that committed while they were awaited is seen.
        v_pair_mailboxes := ARRAY(
            SELECT DISTINCT v_mailboxes[i] FROM unnest(v_group.orders) AS i WHERE v_outcomes[i] IS NULL ORDER BY 1);
        v_suppressed := ARRAY(SELECT s.email FROM suppressions s WHERE s.email = ANY (v_pair_mailboxes));
        v_pair_mailboxes := ARRAY(SELECT m FROM unnest(v_pair_mailboxes) AS m WHERE NOT m = ANY (v_suppressed) ORDER BY 1);
        v_pair_ids := '{}';
        v_pair_statuses := '{}';
        v_pair_mailed := '{}';
        v_pair_new := '{}';
        v_pair_used := '{}';
        FOREACH v_mailbox IN ARRAY v_pair_mailboxes LOOP
            INSERT INTO recipient_consents AS c (account_id, email, status)
                VALUES (v_group.account, v_mailbox, 'requested')
                ON CONFLICT ON CONSTRAINT uq_recipient_consents_account_email DO NOTHING
                RETURNING c.id INTO v_new_id;
            v_pair_new := v_pair_new || FOUND;
            SELECT c.id, c.status, c.mailed_at, c.expires_at INTO v_found FROM recipient_consents c
                WHERE c.account_id = v_group.account AND c.email = v_mailbox FOR UPDATE;
            v_pair_ids := v_pair_ids || v_found.id;
            v_pair_statuses := v_pair_statuses || v_found.status;
            v_pair_mailed := v_pair_mailed || (v_found.mailed_at IS NOT NULL);
            v_pair_used := v_pair_used || false;
        END LOOP;
        -- Requests whose links ran out before the sweep: they expire now (their orders end),
        -- after every consent row of the account is locked and before its row is.
        FOR v_p IN 1 .. coalesce(array_length(v_pair_ids, 1), 0) LOOP
            IF v_pair_statuses[v_p] = 'requested' AND (SELECT e.expired FROM ordersvc_expire_consent(v_pair_ids[v_p]) e) THEN
                v_pair_statuses[v_p] := 'expired';
            END IF;
        END LOOP;

        SELECT a.balance_mills INTO v_balance FROM accounts a WHERE a.id = v_group.account FOR NO KEY UPDATE;
        FOREACH v_i IN ARRAY v_group.orders LOOP
            idx := v_i;
            account_id := v_group.account;
            order_id := NULL;
            order_status := NULL;
            created_at := NULL;
            snapshot := NULL;
            v_k := array_position(v_claimed, p_idempotency_keys[v_i]);
            IF v_outcomes[v_i] IS NOT NULL THEN
                outcome := v_outcomes[v_i];
                order_id := v_order_ids[v_i];
                snapshot := v_snapshots[v_i];
            ELSIF v_k IS NOT NULL AND v_claim_placer[v_k] <> 0 THEN
                -- The same key as an earlier order of this statement, which placed its order.
                IF p_fingerprints[v_claim_placer[v_k]] = p_fingerprints[v_i] THEN
                    outcome := 'replayed';
                    order_id := v_order_ids[v_claim_placer[v_k]];
                    snapshot := v_snapshots[v_claim_placer[v_k]];
                ELSE
                    outcome := 'idempotency_conflict';
                END IF;
            ELSIF v_mailboxes[v_i] = ANY (v_suppressed) THEN
                outcome := 'opted_out';
            ELSIF v_balance IS NULL OR v_balance < p_prices[v_i] THEN
                outcome := 'insufficient_balance';
            ELSE
                v_p := array_position(v_pair_mailboxes, v_mailboxes[v_i]);
                v_status := CASE WHEN v_pair_statuses[v_p] = 'confirmed' THEN 'pending' ELSE 'awaiting confirmation' END;
                INSERT INTO orders AS o (public_id, account_id, email, quantity, price_mills, status)
                    VALUES (p_public_ids[v_i], v_group.account, p_emails[v_i], p_quantities[v_i], p_prices[v_i], v_status)
                    ON CONFLICT (public_id) DO NOTHING
                    RETURNING o.id, o.created_at INTO order_id, created_at;
                IF order_id IS NULL THEN
                    outcome := 'public_id_taken';
                ELSE
                    outcome := 'placed';
                    order_status := v_status;
                    INSERT INTO order_events (order_id, from_status, to_status, reason)
                        VALUES (order_id, NULL, v_status, 'placed');
                    PERFORM ordersvc_post_payment(v_group.account, 'order', -p_prices[v_i], p_emails[v_i], order_id);
                    v_balance := v_balance - p_prices[v_i];
                    v_pair_used[v_p] := true;
                    IF v_k IS NOT NULL THEN
                        -- The answer as a replay shows it (`orders.service`): this one is the order itself.
                        v_order_ids[v_i] := order_id;
                        v_snapshots[v_i] := jsonb_build_object(
                            'public_id', p_public_ids[v_i], 'email', p_emails[v_i], 'quantity', p_quantities[v_i],
                            'price_mills', p_prices[v_i], 'status', v_status, 'progress', 0,
                            'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
                        UPDATE idempotency_keys k
                            SET fingerprint = p_fingerprints[v_i], order_id = v_order_ids[v_i], snapshot = v_snapshots[v_i]
                            WHERE k.account_id = v_group.account AND k.key = p_idempotency_keys[v_i];
                        v_claim_placer[v_k] := v_i;
                    END IF;
                END IF;
            END IF;
            RETURN NEXT;
        END LOOP;

        -- Keys whose every order was refused are left unused.
        DELETE FROM idempotency_keys k
            WHERE k.account_id = v_group.account
              AND k.key = ANY (ARRAY(SELECT c FROM unnest(v_claimed, v_claim_placer) AS u(c, p) WHERE p = 0));
        -- Pairs: one with a placed order is (still, or again) asked unless confirmed; a consent row
        -- this statement created for orders that were all refused goes again.
        FOR v_p IN 1 .. coalesce(array_length(v_pair_ids, 1), 0) LOOP
            IF v_pair_used[v_p] AND v_pair_statuses[v_p] <> 'confirmed' THEN
                IF v_pair_statuses[v_p] <> 'requested' THEN
                    UPDATE recipient_consents c
                        SET status = 'requested', mailed_at = NULL, expires_at = NULL, decided_at = NULL
                        WHERE c.id = v_pair_ids[v_p];
                    v_pair_mailed[v_p] := false;
                END IF;
                IF NOT v_pair_mailed[v_p] THEN
                    v_asks := v_asks || v_pair_ids[v_p];
                    v_ask_mailboxes := v_ask_mailboxes || v_pair_mailboxes[v_p];
                END IF;
            ELSIF v_pair_new[v_p] AND NOT v_pair_used[v_p] THEN
                DELETE FROM recipient_consents c WHERE c.id = v_pair_ids[v_p];
            END IF;
        END LOOP;
    END LOOP;

    -- The messages, last, in address order.
    FOR v_new_id IN SELECT u.id FROM unnest(v_asks, v_ask_mailboxes) AS u(id, mailbox) ORDER BY u.mailbox, u.id LOOP
        PERFORM ordersvc_ask_consent(v_new_id, p_mail_interval, p_link_lifetime);
    END LOOP;
END
$$;
