-- The mailbox key an address is stored and compared under: lower(), with the final sigma folded
-- like any sigma (as Unicode case folding does; PostgreSQL's lower() keeps it). Python's
-- str.lower() differs for such letters, so every comparison computes it here, on both sides
-- (`consent.repository` calls it; a simple SQL function, the planner inlines it).
CREATE OR REPLACE FUNCTION ordersvc_mailbox_key(p_email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT translate(lower(p_email), U&'\03C2', U&'\03C3')
$$;
