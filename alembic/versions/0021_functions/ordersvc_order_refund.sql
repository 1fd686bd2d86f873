-- The refund of an order that ends with `p_delivered` of its `p_quantity` units delivered: the
-- undelivered share of its price, rounded down to the mill (price x (quantity - delivered) /
-- quantity: charge and refunds never return more than was paid). `ordersvc_end_order` pays it;
-- what an ended order cost is its price less this (`orders.lifecycle.orders_with_charges`).
CREATE OR REPLACE FUNCTION ordersvc_order_refund(p_price_mills bigint, p_quantity integer, p_delivered integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT p_price_mills * (p_quantity - p_delivered) / p_quantity
$$;
