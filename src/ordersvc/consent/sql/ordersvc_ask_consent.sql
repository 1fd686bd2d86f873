-- Queue a pair's confirmation message: at most one per address per `p_interval`, however many
-- accounts and orders ask. Locks the consent row, then the address's mailbox row. Nothing is
-- written (false) when the request is not open, was mailed already, or the address got a
-- message within the interval: the housekeeping sweep (`consent.service.mail_waiting_requests`,
-- which calls this too) sends it when the window opens. The message is rendered when it is sent
-- (`consent.service.render_request`): the outbox row names the request and what it asks about,
-- the pair's waiting orders now (found through the index `ix_orders_waiting`).
CREATE OR REPLACE FUNCTION ordersvc_ask_consent(p_consent_id bigint, p_interval interval, p_link_lifetime interval)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_consent record;
    v_last_mailed timestamptz;
    v_orders integer;
    v_quantity bigint;
BEGIN
    SELECT c.account_id, c.email, c.status, c.mailed_at INTO v_consent
        FROM recipient_consents c WHERE c.id = p_consent_id FOR UPDATE;
    IF NOT FOUND OR v_consent.status <> 'requested' OR v_consent.mailed_at IS NOT NULL THEN
        RETURN false;
    END IF;
    INSERT INTO recipient_mailboxes (email) VALUES (v_consent.email) ON CONFLICT (email) DO NOTHING;
    SELECT m.last_mailed_at INTO v_last_mailed FROM recipient_mailboxes m WHERE m.email = v_consent.email FOR UPDATE;
    IF v_last_mailed IS NOT NULL AND v_last_mailed > now() - p_interval THEN
        RETURN false;
    END IF;
    SELECT count(*), coalesce(sum(o.quantity), 0) INTO v_orders, v_quantity FROM orders o
        WHERE o.account_id = v_consent.account_id AND ordersvc_mailbox_key(o.email) = v_consent.email
          AND o.status = 'awaiting confirmation';
    INSERT INTO outbox (message_id, to_email, purpose, consent_id, request_orders, request_quantity, status)
        VALUES ('<' || replace(gen_random_uuid()::text, '-', '') || '@ordersvc>', v_consent.email, 'consent',
                p_consent_id, v_orders, v_quantity, 'pending');
    UPDATE recipient_consents c SET mailed_at = now(), expires_at = now() + p_link_lifetime WHERE c.id = p_consent_id;
    UPDATE recipient_mailboxes m SET last_mailed_at = now() WHERE m.email = v_consent.email;
    RETURN true;
END
$$;
