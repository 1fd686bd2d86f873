-- `order.progress` when a worker's report moves an order's progress: at most one per order per
-- 10 seconds (`events.models.PROGRESS_INTERVAL_SECONDS`), and always the 100 percent one; the
-- final progress of an order that ends short of it is told with its last transition
-- (`ordersvc_emit_order_events`). `order_progress_marks` holds what was told last, while the
-- order is open. A row trigger on `orders` (AFTER UPDATE OF progress): reports come from workers,
-- one order at a time, never from the order statement.
CREATE OR REPLACE FUNCTION ordersvc_emit_order_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.progress IS NOT DISTINCT FROM OLD.progress THEN
        RETURN NULL;
    END IF;
    INSERT INTO order_progress_marks AS m (order_id, progress, told_at)
        VALUES (NEW.id, NEW.progress, clock_timestamp())
        ON CONFLICT (order_id) DO UPDATE SET progress = excluded.progress, told_at = excluded.told_at
            WHERE m.told_at <= clock_timestamp() - interval '10 seconds' OR excluded.progress = 100;
    IF FOUND THEN
        INSERT INTO events (account_id, type, order_id, order_status, order_progress)
            VALUES (NEW.account_id, 'order.progress', NEW.id, NEW.status, NEW.progress);
    END IF;
    RETURN NULL;
END
$$;
