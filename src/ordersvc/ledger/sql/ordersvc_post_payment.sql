-- The ledger's one balance move: a signed payment, with the account's running balance and
-- counters moved by it, in the caller's transaction. `ledger.service.post_payment` and the order
-- statement (`ordersvc_place_orders`) both write payments only through this function.
--
-- The UPDATE takes the account row's lock; a debit's caller has locked the row and checked the
-- balance before (the `balance_not_negative` check is the last line of defence). An order's
-- debit also counts the order: an order is debited once, when it is placed. No row comes back
-- when there is no such account.
CREATE OR REPLACE FUNCTION ordersvc_post_payment(
    p_account_id bigint, p_kind text, p_amount_mills bigint, p_email text DEFAULT NULL,
    p_order_id bigint DEFAULT NULL, p_coupon text DEFAULT NULL, p_deposit_id bigint DEFAULT NULL,
    p_description text DEFAULT NULL)
RETURNS TABLE (payment_id bigint, balance_mills bigint, created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    UPDATE accounts a SET balance_mills = a.balance_mills + p_amount_mills,
                          payments_count = a.payments_count + 1,
                          orders_count = a.orders_count + CASE WHEN p_kind = 'order' THEN 1 ELSE 0 END
        WHERE a.id = p_account_id
        RETURNING a.balance_mills INTO balance_mills;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO payments AS p (account_id, kind, amount_mills, email, order_id, coupon, deposit_id, description)
        VALUES (p_account_id, p_kind, p_amount_mills, p_email, p_order_id, p_coupon, p_deposit_id, p_description)
        RETURNING p.id, p.created_at INTO payment_id, created_at;
    RETURN NEXT;
END
$$;
