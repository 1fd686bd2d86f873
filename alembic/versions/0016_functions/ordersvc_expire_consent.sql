-- An unanswered request whose links ran out expires, and its waiting orders end (`canceled`,
-- refunded in full). Used by the housekeeping sweep (`consent.service.expire_requests`) and by a
-- new order that finds its pair's request expired before the sweep came by. Locks the consent
-- row, then the waiting orders oldest first (found through `ix_orders_waiting`) (each ends through `ordersvc_end_order`, which moves
-- the account's balance). `expired` is false, with nothing written, unless the request is still
-- open and its links have expired; `refunds` and `refunded_mills` count what was paid back.
-- Its statements are planned once per connection, not at each call (`plan_cache_mode`: a
-- plan for the given values costs more than running the statement; the look-ups go by key).
CREATE OR REPLACE FUNCTION ordersvc_expire_consent(p_consent_id bigint)
RETURNS TABLE (expired boolean, refunds integer, refunded_mills bigint)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_consent record;
    v_order_id bigint;
    v_refund bigint;
BEGIN
    expired := false;
    refunds := 0;
    refunded_mills := 0;
    SELECT c.account_id, c.email, c.status, c.expires_at INTO v_consent
        FROM recipient_consents c WHERE c.id = p_consent_id FOR UPDATE;
    IF NOT FOUND OR v_consent.status <> 'requested' OR v_consent.expires_at IS NULL
            OR v_consent.expires_at >= now() THEN
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE recipient_consents c SET status = 'expired', decided_at = now() WHERE c.id = p_consent_id;
    FOR v_order_id IN
        SELECT o.id FROM orders o
        WHERE o.account_id = v_consent.account_id AND ordersvc_mailbox_key(o.email) = v_consent.email
          AND o.status = 'awaiting confirmation'
        ORDER BY o.id FOR UPDATE
    LOOP
        v_refund := ordersvc_end_order(v_order_id, 'canceled', 'confirmation expired');
        IF v_refund > 0 THEN
            refunds := refunds + 1;
            refunded_mills := refunded_mills + v_refund;
        END IF;
    END LOOP;
    expired := true;
    RETURN NEXT;
END
$$;
