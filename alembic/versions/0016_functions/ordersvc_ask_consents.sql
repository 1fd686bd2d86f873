-- Queue the confirmation messages of open requests: at most one per address per `p_interval`,
-- however many accounts and orders ask (of several requests to one address here, the oldest is
-- mailed). Nothing is written for a request that is not open, was mailed already, or whose
-- address got a message within the interval: the housekeeping sweep
-- (`consent.service.mail_waiting_requests`, which calls this too) sends it when the window opens.
-- Locks the consent rows, then the addresses' mailbox rows, each in address order. The message is
-- rendered when it is sent (`consent.service.render_request`): the outbox row names the request
-- and what it asks about, the pair's orders waiting now (found through `ix_orders_waiting`).
-- Returns how many messages were queued.
-- Its statements are planned once per connection, not at each call (`plan_cache_mode`: a
-- plan for the given values costs more than running the statement; the look-ups go by key).
CREATE OR REPLACE FUNCTION ordersvc_ask_consents(p_consent_ids bigint[], p_interval interval,
                                                 p_link_lifetime interval)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_open bigint[];
    v_open_mailboxes text[];
    v_stamped text[];
    v_mail bigint[];
BEGIN
    SELECT coalesce(array_agg(c.id ORDER BY c.email, c.id), '{}'), coalesce(array_agg(c.email ORDER BY c.email, c.id), '{}')
        INTO v_open, v_open_mailboxes
        FROM (SELECT c.id, c.email FROM recipient_consents c
              WHERE c.id = ANY (p_consent_ids) AND c.status = 'requested' AND c.mailed_at IS NULL
              ORDER BY c.email, c.id FOR UPDATE) c;
    IF array_length(v_open, 1) IS NULL THEN
        RETURN 0;
    END IF;
    -- The addresses' mailbox rows, in address order, in one statement: a new address's row is
    -- created stamped (it was never mailed), an existing one is locked and stamped if its window
    -- is open. The conflict is found through the primary key, whatever the table's statistics.
    WITH stamped AS (
        INSERT INTO recipient_mailboxes AS m (email, last_mailed_at)
            SELECT DISTINCT u.mailbox, now() FROM unnest(v_open_mailboxes) AS u(mailbox) ORDER BY 1
            ON CONFLICT (email) DO UPDATE SET last_mailed_at = now()
                WHERE m.last_mailed_at IS NULL OR m.last_mailed_at <= now() - p_interval
            RETURNING m.email)
    SELECT coalesce(array_agg(stamped.email), '{}') INTO v_stamped FROM stamped;
    -- The oldest request of each address stamped.
    v_mail := ARRAY(
        SELECT DISTINCT ON (u.mailbox) u.id
        FROM unnest(v_open, v_open_mailboxes) AS u(id, mailbox)
        WHERE u.mailbox = ANY (v_stamped)
        ORDER BY u.mailbox, u.id);
    IF array_length(v_mail, 1) IS NULL THEN
        RETURN 0;
    END IF;
    WITH asked AS (
        UPDATE recipient_consents c SET mailed_at = now(), expires_at = now() + p_link_lifetime
            WHERE c.id = ANY (v_mail)
            RETURNING c.id, c.account_id, c.email
    )
    INSERT INTO outbox (message_id, to_email, purpose, consent_id, request_orders, request_quantity, status)
        SELECT '<' || replace(gen_random_uuid()::text, '-', '') || '@ordersvc>', asked.email, 'consent', asked.id,
               w.orders, w.quantity, 'pending'
        FROM asked
        CROSS JOIN LATERAL (
            SELECT count(*)::integer AS orders, coalesce(sum(o.quantity), 0) AS quantity FROM orders o
            WHERE o.account_id = asked.account_id AND ordersvc_mailbox_key(o.email) = asked.email
              AND o.status = 'awaiting confirmation') w
        ORDER BY asked.email;
    RETURN array_length(v_mail, 1);
END
$$;
