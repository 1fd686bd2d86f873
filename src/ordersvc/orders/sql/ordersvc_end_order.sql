-- An order ends (`canceled` before work, `partial`, `completed`): its status, the transition in
-- its history, and the refund of the undelivered share of its price (`ordersvc_order_refund`),
-- as a `refund` payment through the ledger. The caller holds the order's row lock and has
-- checked the transition (`orders.lifecycle`). Returns the refund in mills.
-- Its statements are planned once per connection, not at each call (`plan_cache_mode`: a
-- plan for the given values costs more than running the statement; the look-ups go by key).
CREATE OR REPLACE FUNCTION ordersvc_end_order(p_order_id bigint, p_to_status text, p_reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_order record;
    v_refund bigint;
BEGIN
    SELECT o.account_id, o.email, o.status, o.price_mills, o.quantity, o.delivered INTO v_order
        FROM orders o WHERE o.id = p_order_id FOR UPDATE;
    UPDATE orders o SET status = p_to_status WHERE o.id = p_order_id;
    INSERT INTO order_events (order_id, from_status, to_status, reason)
        VALUES (p_order_id, v_order.status, p_to_status, p_reason);
    v_refund := ordersvc_order_refund(v_order.price_mills, v_order.quantity, v_order.delivered);
    IF v_refund > 0 THEN
        PERFORM ordersvc_post_payments(ARRAY[v_order.account_id], ARRAY['refund'], ARRAY[v_refund], ARRAY[v_order.email],
                                      ARRAY[p_order_id], ARRAY[NULL::text], ARRAY[NULL::bigint], ARRAY[NULL::text]);
    END IF;
    RETURN v_refund;
END
$$;
