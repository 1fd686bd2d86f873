-- Every order, whatever its recipient's consent and with or without an idempotency key, in one
-- statement that commits on its own (autocommit): `orders.service.place` sends the orders that
-- arrive while a statement is in flight together in the next one (group commit, `batching`).
-- One round trip and one commit for the batch; each account row is locked once per batch.
--
-- Each order is decided alone, in the given order, as if sent one by one:
--   1. the caller (`ordersvc_caller_account`): the active API key with this prefix and SHA-256 of
--      an enabled account, or an account a browser session's check let through: else
--      `invalid_key`;
--   2. the idempotency key, if any: a key this account used before replays that order
--      (`replayed`, with the first answer's snapshot) when the parameters' fingerprint matches,
--      and is `idempotency_conflict` when not. A key is locked first, so a concurrent statement
--      with the same key waits for this one and then replays; a key whose order is refused is
--      left unused (its record is written with the order);
--   3. the recipient: an opted-out address is `opted_out`;
--   4. the balance: `insufficient_balance`;
--   5. the order: `pending` to a recipient who confirmed, else `awaiting confirmation`; its
--      `placed` event, its debit through `ordersvc_post_payments`, its idempotency record. A
--      public id already taken is `public_id_taken` (the caller retries with another; one taken
--      by a concurrent statement after the check fails this statement, and the caller sends the
--      batch again with new ids).
-- A refused order writes nothing of its own. The consent rules for a recipient who has not
-- confirmed: a request whose links expired before the sweep came by expires now
-- (`ordersvc_expire_consent`: its waiting orders end, refunded), before the balance is looked at,
-- so this happens even when the order is then refused (it is the sweep's work, done early); a
-- declined or expired pair is asked again; a new pair gets a request.
-- A pair with a placed order and an unmailed request is asked (`ordersvc_ask_consents`: at most
-- one message per address per `p_mail_interval`), in the same transaction as its order.
--
-- Locks, always in this order, so that statements never wait on each other in a cycle, and an
-- opt-out (the address lock exclusive, then consents, orders, accounts in id order), a decline
-- or an expiry (a consent row, its account's orders, that account's row) never waits for a
-- statement that waits for it: every address lock (shared, in address order); every idempotency
-- key's lock (in (account, hash) order); every consent row (in (account, address) order); then
-- account by account in ascending id, the orders an expiry ends and the account row; last, the
-- mailbox rows of the messages queued (in address order). Only order statements take the key
-- locks, and they take them before any row.
--
-- The account rows are held for as short a time as the rule allows: two statements of one
-- account (a hot account's, from two server processes) take its row in turn, and the second
-- waits for the first one's commit. Without an expiry to run, the balances are read without a
-- lock, the orders decided on them, and the orders, their events, the idempotency records and
-- the consent rows' changes written; only then are the account rows locked (in id order), each
-- balance checked to cover this statement's debits of it, and the debits and the messages
-- written. A balance that moved below them meanwhile (a concurrent debit) fails the statement
-- with SQLSTATE `OSBAL`, having written nothing, and the caller sends it again with
-- `p_lock_first`, which locks the account rows before the balances are read (as an expiry does).
-- `p_lock_first` is true by default (a caller that does not handle `OSBAL` never gets it):
-- `orders.batching` passes false first.
--
-- The locks and decisions come first, each kind in one statement for the whole batch; the writes
-- then go in a few set-based statements (orders, events, payments, idempotency records), under
-- locks already held.
--
-- Settings: every look-up goes through its index whatever the tables' statistics say
-- (`enable_seqscan`: a new install's tables start empty), and the statements, this function's
-- and those of the functions it calls, are planned once per connection, not at each call
-- (`plan_cache_mode`: planning a batch's statements cost more than running them).
--
-- `p_lock_timeout_ms`: what is left of the most hurried request's time; no lock is awaited
-- beyond it (SQLSTATE 55P03, and the statement wrote nothing).
CREATE OR REPLACE FUNCTION ordersvc_place_orders(
    p_prefixes text[], p_key_hashes bytea[], p_account_ids bigint[], p_public_ids text[], p_emails text[],
    p_quantities integer[], p_prices bigint[], p_idempotency_keys text[], p_fingerprints bytea[],
    p_lock_timeout_ms integer, p_mail_interval interval, p_link_lifetime interval,
    p_lock_first boolean DEFAULT true)
RETURNS TABLE (idx integer, outcome ordersvc_order_outcome, account_id bigint, order_id bigint,
               order_status text, created_at timestamptz, snapshot jsonb)
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_n integer := coalesce(array_length(p_emails, 1), 0);
    v_accounts bigint[];
    v_mailboxes text[];
    -- Per order: what was decided, and for a placed or replayed one what its answer shows.
    v_outcomes ordersvc_order_outcome[];
    v_statuses text[];
    v_order_ids bigint[];
    v_created timestamptz[];
    v_snapshots jsonb[];
    v_replay_of integer[];  -- an order replaying an earlier one of this statement: that one
    v_placed integer[] := '{}';
    v_i integer;
    v_p integer;
    v_k integer;
    v_a integer;
    v_account bigint;
    v_found record;
    v_taken text[];
    v_has_keys boolean;
    -- The idempotency keys not used before ("account:key"), and the order of this statement that
    -- placed each (0: none yet).
    v_claimed text[] := '{}';
    v_claim_accounts bigint[];
    v_claim_keys text[];
    v_claim_placer integer[] := '{}';
    -- The pairs ("account:address"), in (account, address) order: consent id, account, status,
    -- whether mailed, whether its request ran out before the sweep, whether this statement created
    -- the row, whether an order went to it.
    v_want_accounts bigint[];
    v_want_mailboxes text[];
    v_existing text[];
    v_created_rows text[];
    v_pair_ids bigint[];
    v_pair_accounts bigint[];
    v_pair_statuses text[];
    v_pair_emails text[];
    v_created_ids bigint[];
    v_created_accounts bigint[];
    v_created_emails text[];
    v_pair_mailed boolean[];
    v_pair_expired boolean[];
    v_pair_new boolean[];
    v_pair_used boolean[];
    v_suppressed text[];
    -- The accounts, in id order, and their balances as the orders take them.
    v_acc_ids bigint[];
    v_balances bigint[];
    v_locked boolean;  -- the account rows were locked before their balances were read
    v_debited bigint[];
    v_debits bigint[];
    v_held bigint[];
    v_balance bigint;
    v_new_ids bigint[];
    v_new_times timestamptz[];
    v_reset bigint[] := '{}';
    v_delete bigint[] := '{}';
    v_asks bigint[] := '{}';
BEGIN
    IF p_lock_timeout_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(p_lock_timeout_ms, 1)::text, true);
    END IF;
    v_accounts := ARRAY(
        SELECT ordersvc_caller_account(p_prefixes[i], p_key_hashes[i], p_account_ids[i])
        FROM generate_subscripts(p_emails, 1) AS i ORDER BY i);
    v_mailboxes := ARRAY(SELECT ordersvc_mailbox_key(e) FROM unnest(p_emails) WITH ORDINALITY AS u(e, i) ORDER BY i);
    v_outcomes := array_fill(NULL::ordersvc_order_outcome, ARRAY[v_n]);
    v_statuses := array_fill(NULL::text, ARRAY[v_n]);
    v_order_ids := array_fill(NULL::bigint, ARRAY[v_n]);
    v_created := array_fill(NULL::timestamptz, ARRAY[v_n]);
    v_snapshots := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_replay_of := array_fill(NULL::integer, ARRAY[v_n]);
    v_taken := ARRAY(SELECT o.public_id FROM orders o WHERE o.public_id = ANY (p_public_ids));
    v_has_keys := EXISTS (SELECT 1 FROM unnest(p_idempotency_keys) AS k WHERE k IS NOT NULL);
    FOR v_i IN 1 .. v_n LOOP
        IF v_accounts[v_i] IS NULL THEN
            v_outcomes[v_i] := 'invalid_key';
        ELSIF p_public_ids[v_i] = ANY (v_taken) THEN
            v_outcomes[v_i] := 'public_id_taken';
        END IF;
    END LOOP;
    -- Every address lock (shared), in address order: one statement, the locks taken as the
    -- sorted rows come.
    PERFORM pg_advisory_xact_lock_shared(hashtext(m.mailbox)) FROM (
        SELECT DISTINCT v_mailboxes[i] AS mailbox FROM generate_subscripts(p_emails, 1) AS i
        WHERE v_outcomes[i] IS NULL ORDER BY 1) m;
    -- A statement of its own after the address locks: it sees an opt-out that committed while they
    -- were awaited, and none can commit while they are held.
    v_suppressed := ARRAY(SELECT s.email FROM suppressions s WHERE s.email = ANY (v_mailboxes));

    -- Idempotency keys: each taken by a lock of its own, (account, hash of the key), in that
    -- order and held to the end, so a concurrent statement with the same key waits for this one
    -- and then finds its record. A key used before decides its orders now; the others are this
    -- statement's ("account:key" in v_claimed), and a record is written only for a key whose order
    -- is placed.
    IF v_has_keys THEN
        PERFORM pg_advisory_xact_lock((k.account % 2147483647)::integer, k.h) FROM (
            SELECT DISTINCT v_accounts[i] AS account, hashtext(p_idempotency_keys[i]) AS h
            FROM generate_subscripts(p_emails, 1) AS i
            WHERE v_outcomes[i] IS NULL AND p_idempotency_keys[i] IS NOT NULL ORDER BY 1, 2) k;
        SELECT coalesce(array_agg(c.account), '{}'), coalesce(array_agg(c.key), '{}')
            INTO v_claim_accounts, v_claim_keys
            FROM (SELECT DISTINCT v_accounts[i] AS account, p_idempotency_keys[i] AS key
                  FROM generate_subscripts(p_emails, 1) AS i
                  WHERE v_outcomes[i] IS NULL AND p_idempotency_keys[i] IS NOT NULL) c;
        v_claimed := ARRAY(SELECT a || ':' || k FROM unnest(v_claim_accounts, v_claim_keys) AS u(a, k));
        -- A statement of its own: it sees the records of statements whose locks it waited for. Each
        -- (account, key) is looked up alone through the primary key (LIMIT 1 keeps the planner
        -- from joining the lists another way, whatever the table's statistics).
        FOR v_found IN
            SELECT k.account_id, k.key, k.fingerprint, k.order_id, k.snapshot
            FROM unnest(v_claim_accounts, v_claim_keys) AS w(account_id, key)
            CROSS JOIN LATERAL (
                SELECT k.account_id, k.key, k.fingerprint, k.order_id, k.snapshot FROM idempotency_keys k
                WHERE k.account_id = w.account_id AND k.key = w.key LIMIT 1) k
        LOOP
            v_claimed := array_remove(v_claimed, v_found.account_id || ':' || v_found.key);
            FOR v_i IN 1 .. v_n LOOP
                IF v_accounts[v_i] = v_found.account_id AND p_idempotency_keys[v_i] = v_found.key
                   AND v_outcomes[v_i] IS NULL THEN
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
        v_claim_placer := array_fill(0, ARRAY[coalesce(array_length(v_claimed, 1), 0)]);
    END IF;

    -- The consent rows of the orders still to decide, locked in (account, address) order; those
    -- missing are created as `requested` (and so locked: no one else sees them). When this
    -- statement created every missing one, they join the rows read; when a concurrent statement
    -- created some first, all are read again (locked, after it commits).
    SELECT coalesce(array_agg(w.account ORDER BY w.account, w.mailbox), '{}'),
           coalesce(array_agg(w.mailbox ORDER BY w.account, w.mailbox), '{}')
        INTO v_want_accounts, v_want_mailboxes
        FROM (SELECT DISTINCT v_accounts[i] AS account, v_mailboxes[i] AS mailbox FROM generate_subscripts(p_emails, 1) AS i
              WHERE v_outcomes[i] IS NULL AND NOT v_mailboxes[i] = ANY (v_suppressed)) w;
    v_created_rows := '{}';
    FOR v_p IN 1 .. 2 LOOP
        SELECT coalesce(array_agg(c.account_id || ':' || c.email ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.id ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.account_id ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.status ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.mailed_at IS NOT NULL ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.status = 'requested' AND coalesce(c.expires_at < now(), false)
                                  ORDER BY c.account_id, c.email), '{}'),
               coalesce(array_agg(c.email ORDER BY c.account_id, c.email), '{}')
            INTO v_existing, v_pair_ids, v_pair_accounts, v_pair_statuses, v_pair_mailed, v_pair_expired, v_pair_emails
            -- Each pair looked up alone through the unique index, in the pairs' order (a lateral
            -- subquery that locks is never joined another way).
            FROM (SELECT c.id, c.account_id, c.email, c.status, c.mailed_at, c.expires_at
                  FROM unnest(v_want_accounts, v_want_mailboxes) AS w(account_id, email)
                  CROSS JOIN LATERAL (
                      SELECT c.id, c.account_id, c.email, c.status, c.mailed_at, c.expires_at
                      FROM recipient_consents c WHERE c.account_id = w.account_id AND c.email = w.email
                      FOR UPDATE) c) c;
        EXIT WHEN coalesce(array_length(v_existing, 1), 0) = coalesce(array_length(v_want_accounts, 1), 0)
                  OR v_p = 2;
        WITH created AS (
            INSERT INTO recipient_consents AS c (account_id, email, status)
                SELECT DISTINCT v_accounts[i], v_mailboxes[i], 'requested' FROM generate_subscripts(p_emails, 1) AS i
                WHERE v_outcomes[i] IS NULL AND NOT v_mailboxes[i] = ANY (v_suppressed)
                  AND NOT (v_accounts[i] || ':' || v_mailboxes[i]) = ANY (v_existing)
                ORDER BY 1, 2
                ON CONFLICT ON CONSTRAINT uq_recipient_consents_account_email DO NOTHING
                RETURNING c.id, c.account_id, c.email)
        SELECT coalesce(array_agg(created.account_id || ':' || created.email), '{}'),
               coalesce(array_agg(created.id), '{}'), coalesce(array_agg(created.account_id), '{}'),
               coalesce(array_agg(created.email), '{}')
            INTO v_created_rows, v_created_ids, v_created_accounts, v_created_emails FROM created;
        IF coalesce(array_length(v_existing, 1), 0) + coalesce(array_length(v_created_ids, 1), 0)
           = coalesce(array_length(v_want_accounts, 1), 0) THEN
            -- Every missing pair is this statement's: the rows it created, as created, in order.
            SELECT coalesce(array_agg(u.account_id || ':' || u.email ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.id ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.account_id ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.status ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.mailed ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.expired ORDER BY u.account_id, u.email), '{}'),
                   coalesce(array_agg(u.email ORDER BY u.account_id, u.email), '{}')
                INTO v_existing, v_pair_ids, v_pair_accounts, v_pair_statuses, v_pair_mailed, v_pair_expired,
                     v_pair_emails
                FROM (SELECT * FROM unnest(v_pair_ids, v_pair_accounts, v_pair_emails, v_pair_statuses, v_pair_mailed,
                                           v_pair_expired) AS p(id, account_id, email, status, mailed, expired)
                      UNION ALL
                      SELECT n.id, n.account_id, n.email, 'requested', false, false
                      FROM unnest(v_created_ids, v_created_accounts, v_created_emails) AS n(id, account_id, email)) u;
            EXIT;
        END IF;
    END LOOP;
    v_pair_new := ARRAY(SELECT m = ANY (v_created_rows) FROM unnest(v_existing) WITH ORDINALITY AS u(m, n) ORDER BY n);
    v_pair_used := array_fill(false, ARRAY[coalesce(array_length(v_pair_ids, 1), 0)]);

    -- The account rows, in id order. A request whose links ran out before the sweep expires first
    -- (its orders end, refunded), just before its account's row is locked: account by account
    -- then, where there is one; else, with `p_lock_first`, one statement for them all; else the
    -- balances are read without a lock, which is taken just before the debits (below).
    v_acc_ids := ARRAY(
        SELECT DISTINCT v_accounts[i] FROM generate_subscripts(p_emails, 1) AS i WHERE v_outcomes[i] IS NULL ORDER BY 1);
    v_locked := p_lock_first OR coalesce(true = ANY (v_pair_expired), false);
    IF NOT v_locked THEN
        SELECT coalesce(array_agg(a.balance_mills ORDER BY a.id), '{}') INTO v_balances
            FROM accounts a WHERE a.id = ANY (v_acc_ids);
    ELSIF true = ANY (v_pair_expired) THEN
        v_balances := '{}';
        FOREACH v_account IN ARRAY v_acc_ids LOOP
            FOR v_p IN 1 .. coalesce(array_length(v_pair_ids, 1), 0) LOOP
                IF v_pair_accounts[v_p] = v_account AND v_pair_expired[v_p] THEN
                    IF (SELECT e.expired FROM ordersvc_expire_consent(v_pair_ids[v_p]) e) THEN
                        v_pair_statuses[v_p] := 'expired';
                    END IF;
                END IF;
            END LOOP;
            SELECT a.balance_mills INTO v_balance FROM accounts a WHERE a.id = v_account FOR NO KEY UPDATE;
            v_balances := v_balances || v_balance;
        END LOOP;
    ELSE
        SELECT coalesce(array_agg(a.balance_mills ORDER BY a.id), '{}') INTO v_balances
            FROM (SELECT a.id, a.balance_mills FROM accounts a WHERE a.id = ANY (v_acc_ids)
                  ORDER BY a.id FOR NO KEY UPDATE) a;
    END IF;

    -- Each order in turn, as if sent one by one.
    FOR v_i IN 1 .. v_n LOOP
        CONTINUE WHEN v_outcomes[v_i] IS NOT NULL;
        v_a := array_position(v_acc_ids, v_accounts[v_i]);
        v_k := array_position(v_claimed, v_accounts[v_i] || ':' || p_idempotency_keys[v_i]);
        IF v_k IS NOT NULL AND v_claim_placer[v_k] <> 0 THEN
            -- The same key as an earlier order of this statement, which placed its order.
            IF p_fingerprints[v_claim_placer[v_k]] = p_fingerprints[v_i] THEN
                v_outcomes[v_i] := 'replayed';
                v_replay_of[v_i] := v_claim_placer[v_k];
            ELSE
                v_outcomes[v_i] := 'idempotency_conflict';
            END IF;
        ELSIF v_mailboxes[v_i] = ANY (v_suppressed) THEN
            v_outcomes[v_i] := 'opted_out';
        ELSIF v_balances[v_a] < p_prices[v_i] THEN
            v_outcomes[v_i] := 'insufficient_balance';
        ELSE
            v_p := array_position(v_existing, v_accounts[v_i] || ':' || v_mailboxes[v_i]);
            v_outcomes[v_i] := 'placed';
            v_statuses[v_i] := CASE WHEN v_pair_statuses[v_p] = 'confirmed' THEN 'pending'
                                    ELSE 'awaiting confirmation' END;
            v_balances[v_a] := v_balances[v_a] - p_prices[v_i];
            v_pair_used[v_p] := true;
            v_placed := v_placed || v_i;
            IF v_k IS NOT NULL THEN
                v_claim_placer[v_k] := v_i;
            END IF;
        END IF;
    END LOOP;

    -- Pairs with a placed order are (still, or again) asked unless confirmed; a consent row created
    -- for orders all refused goes again.
    FOR v_p IN 1 .. coalesce(array_length(v_pair_ids, 1), 0) LOOP
        IF v_pair_used[v_p] AND v_pair_statuses[v_p] <> 'confirmed' THEN
            IF v_pair_statuses[v_p] <> 'requested' THEN
                v_reset := v_reset || v_pair_ids[v_p];
                v_pair_mailed[v_p] := false;
            END IF;
            IF NOT v_pair_mailed[v_p] THEN
                v_asks := v_asks || v_pair_ids[v_p];
            END IF;
        ELSIF v_pair_new[v_p] AND NOT v_pair_used[v_p] THEN
            v_delete := v_delete || v_pair_ids[v_p];
        END IF;
    END LOOP;

    -- The writes, under the locks taken above: the orders with their events and the idempotency
    -- records; the consent rows; then the debits (the account rows locked now, when they were not
    -- before) and the messages.
    IF coalesce(array_length(v_placed, 1), 0) > 0 THEN
        WITH placed AS (
            SELECT u.i, u.n FROM unnest(v_placed) WITH ORDINALITY AS u(i, n)
        ), inserted AS (
            INSERT INTO orders AS o (public_id, account_id, email, quantity, price_mills, status)
                SELECT p_public_ids[p.i], v_accounts[p.i], p_emails[p.i], p_quantities[p.i], p_prices[p.i],
                       v_statuses[p.i]
                FROM placed p ORDER BY p.n
                RETURNING o.id, o.public_id, o.status, o.created_at
        ), events AS (
            INSERT INTO order_events (order_id, from_status, to_status, reason)
                SELECT inserted.id, NULL, inserted.status, 'placed' FROM inserted
        )
        SELECT array_agg(inserted.id ORDER BY p.n), array_agg(inserted.created_at ORDER BY p.n)
            INTO v_new_ids, v_new_times
            FROM placed p JOIN inserted ON inserted.public_id = p_public_ids[p.i];
        FOR v_k IN 1 .. array_length(v_placed, 1) LOOP
            v_i := v_placed[v_k];
            v_order_ids[v_i] := v_new_ids[v_k];
            v_created[v_i] := v_new_times[v_k];
            IF p_idempotency_keys[v_i] IS NOT NULL THEN
                -- The answer as a replay shows it (`orders.service`).
                v_snapshots[v_i] := jsonb_build_object(
                    'public_id', p_public_ids[v_i], 'email', p_emails[v_i], 'quantity', p_quantities[v_i],
                    'price_mills', p_prices[v_i], 'status', v_statuses[v_i], 'progress', 0,
                    'created_at', to_char(v_new_times[v_k] AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
            END IF;
        END LOOP;
        INSERT INTO idempotency_keys (account_id, key, fingerprint, order_id, snapshot)
            SELECT v_accounts[u.i], p_idempotency_keys[u.i], p_fingerprints[u.i], v_order_ids[u.i], v_snapshots[u.i]
            FROM unnest(v_placed) AS u(i)
            WHERE p_idempotency_keys[u.i] IS NOT NULL;
    END IF;
    IF coalesce(array_length(v_reset, 1), 0) > 0 THEN
        UPDATE recipient_consents c SET status = 'requested', mailed_at = NULL, expires_at = NULL, decided_at = NULL
            WHERE c.id = ANY (v_reset);
    END IF;
    IF coalesce(array_length(v_delete, 1), 0) > 0 THEN
        DELETE FROM recipient_consents c WHERE c.id = ANY (v_delete);
    END IF;
    -- The debits, through the ledger's balance move. Balances read without a lock: the rows of the
    -- debited accounts are locked now, in id order, and each must still cover its debits.
    IF coalesce(array_length(v_placed, 1), 0) > 0 THEN
        IF NOT v_locked THEN
            SELECT array_agg(d.account ORDER BY d.account), array_agg(d.total ORDER BY d.account)
                INTO v_debited, v_debits
                FROM (SELECT v_accounts[i] AS account, sum(p_prices[i]) AS total FROM unnest(v_placed) AS u(i)
                      GROUP BY 1) d;
            SELECT array_agg(a.balance_mills ORDER BY a.id) INTO v_held
                FROM (SELECT a.id, a.balance_mills FROM accounts a WHERE a.id = ANY (v_debited)
                      ORDER BY a.id FOR NO KEY UPDATE) a;
            IF EXISTS (SELECT 1 FROM unnest(v_held, v_debits) AS u(held, debit) WHERE u.held < u.debit) THEN
                RAISE EXCEPTION 'a balance moved below the debits decided on it'
                    USING ERRCODE = 'OSBAL', HINT = 'send the orders again with p_lock_first';
            END IF;
        END IF;
        PERFORM ordersvc_post_payments(
            ARRAY(SELECT v_accounts[i] FROM unnest(v_placed) WITH ORDINALITY AS u(i, n) ORDER BY n),
            array_fill('order'::text, ARRAY[array_length(v_placed, 1)]),
            ARRAY(SELECT -p_prices[i] FROM unnest(v_placed) WITH ORDINALITY AS u(i, n) ORDER BY n),
            ARRAY(SELECT p_emails[i] FROM unnest(v_placed) WITH ORDINALITY AS u(i, n) ORDER BY n),
            v_new_ids,
            array_fill(NULL::text, ARRAY[array_length(v_placed, 1)]),
            array_fill(NULL::bigint, ARRAY[array_length(v_placed, 1)]),
            array_fill(NULL::text, ARRAY[array_length(v_placed, 1)]));
    END IF;
    -- The messages, last (the mailbox rows, in address order).
    IF array_length(v_asks, 1) IS NOT NULL THEN
        PERFORM ordersvc_ask_consents(v_asks, p_mail_interval, p_link_lifetime);
    END IF;

    -- An order replaying an earlier one of this statement answers as that one did.
    FOR v_i IN 1 .. v_n LOOP
        IF v_replay_of[v_i] IS NOT NULL THEN
            v_order_ids[v_i] := v_order_ids[v_replay_of[v_i]];
            v_snapshots[v_i] := v_snapshots[v_replay_of[v_i]];
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT i, v_outcomes[i], v_accounts[i], v_order_ids[i], v_statuses[i], v_created[i],
               CASE WHEN v_outcomes[i] = 'replayed' THEN v_snapshots[i] END
        FROM generate_subscripts(p_emails, 1) AS i;
END
$$;
