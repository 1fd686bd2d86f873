-- The ledger's one balance move: signed payments, with each account's running balance and
-- counters moved by them, in the caller's transaction. `ledger.service.post_payment` (one
-- payment), an order's end (`ordersvc_end_order`, its refund) and the order statement
-- (`ordersvc_place_orders`, a batch's debits) write payments only through this function.
--
-- One UPDATE per account moves its balance by the sum of its payments here and counts them (and,
-- for an order's debit, the order: an order is debited once, when it is placed); it takes the
-- account row's lock. A debit's caller has locked the row and checked the balance before (the
-- `balance_not_negative` check is the last line of defence). Returns one row per payment written;
-- none for an account that does not exist. `p_operator_ids`: the operator of each manual payment
-- (a console's credit or debit; NULL for everything else, the CLI's included).
-- Each payment is told (`payment.created`), and an account whose balance this move takes below
-- its alert threshold (`balance_alerts`) from at or above it gets `balance.low`, after its
-- payments' events: in this statement, so no balance change goes untold.
-- Its statements are planned once per connection, not at each call (`plan_cache_mode`: a
-- plan for the given values costs more than running the statement; the look-ups go by key).
CREATE OR REPLACE FUNCTION ordersvc_post_payments(
    p_account_ids bigint[], p_kinds text[], p_amounts bigint[], p_emails text[], p_order_ids bigint[],
    p_coupons text[], p_deposit_ids bigint[], p_descriptions text[], p_operator_ids bigint[] DEFAULT NULL)
RETURNS TABLE (payment_id bigint, account_id bigint, balance_mills bigint, created_at timestamptz)
LANGUAGE sql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
WITH payment AS (
    SELECT * FROM unnest(p_account_ids, p_kinds, p_amounts, p_emails, p_order_ids, p_coupons, p_deposit_ids,
                         p_descriptions, p_operator_ids) WITH ORDINALITY
        AS u(account_id, kind, amount_mills, email, order_id, coupon, deposit_id, description, operator_id, n)
), moved AS (
    UPDATE accounts a SET balance_mills = a.balance_mills + m.amount_mills,
                          payments_count = a.payments_count + m.payments,
                          orders_count = a.orders_count + m.orders
        FROM (SELECT p.account_id, sum(p.amount_mills) AS amount_mills, count(*) AS payments,
                     count(*) FILTER (WHERE p.kind = 'order') AS orders
              FROM payment p GROUP BY p.account_id) m
        WHERE a.id = m.account_id
        RETURNING a.id, a.balance_mills, a.balance_mills - m.amount_mills AS before_mills
), written AS (
    INSERT INTO payments (account_id, kind, amount_mills, email, order_id, coupon, deposit_id, description, operator_id)
        SELECT p.account_id, p.kind, p.amount_mills, p.email, p.order_id, p.coupon, p.deposit_id, p.description,
               p.operator_id
        FROM payment p JOIN moved ON moved.id = p.account_id ORDER BY p.n
        RETURNING payments.id, payments.account_id, payments.created_at
), told AS (
    INSERT INTO events (account_id, type, payment_id, balance_mills, threshold_mills)
        SELECT t.account_id, t.type, t.payment_id, t.balance_mills, t.threshold_mills FROM (
            SELECT w.account_id, 'payment.created' AS type, w.id AS payment_id, NULL::bigint AS balance_mills,
                   NULL::bigint AS threshold_mills, w.id AS n
            FROM written w
            UNION ALL
            SELECT moved.id, 'balance.low', NULL, moved.balance_mills, b.threshold_mills, NULL
            FROM moved JOIN balance_alerts b ON b.account_id = moved.id
            WHERE moved.before_mills >= b.threshold_mills AND moved.balance_mills < b.threshold_mills) t
        ORDER BY t.account_id, t.n NULLS LAST
)
SELECT w.id, w.account_id, moved.balance_mills, w.created_at FROM written w JOIN moved ON moved.id = w.account_id
$$;
