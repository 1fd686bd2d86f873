-- The events of orders' transitions, in the statement that writes them: `order.created` for an
-- order's first event (it was placed), `order.status_changed` for each later one, with the
-- order's status and progress as they stand. An order that ends completed or partial also tells
-- its final progress (`order.progress`), unless that exact progress was told already
-- (`ordersvc_emit_order_progress`, which throttles the reports before it).
-- A statement trigger on `order_events` (AFTER INSERT, the inserted rows as `inserted`): one
-- INSERT for the whole statement, so the order statement's batch costs one more write, not one
-- per order. Every writer of a transition writes an `order_events` row, so none can forget this.
CREATE OR REPLACE FUNCTION ordersvc_emit_order_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (account_id, type, order_id, order_status, order_previous_status, order_progress)
        SELECT o.account_id, t.type, e.order_id, e.to_status, e.from_status, o.progress
        FROM inserted e
        JOIN orders o ON o.id = e.order_id
        CROSS JOIN LATERAL (
            SELECT CASE WHEN e.from_status IS NULL THEN 'order.created' ELSE 'order.status_changed' END AS type, 1 AS k
            UNION ALL
            SELECT 'order.progress', 2
            WHERE e.to_status IN ('completed', 'partial')
              AND NOT EXISTS (SELECT 1 FROM order_progress_marks m WHERE m.order_id = e.order_id
                                                                     AND m.progress = o.progress)) t
        ORDER BY e.id, t.k;
    DELETE FROM order_progress_marks m USING inserted e
        WHERE m.order_id = e.order_id AND e.to_status IN ('completed', 'partial', 'canceled');
    RETURN NULL;
END
$$;
