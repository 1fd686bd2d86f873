-- The account a statement serves: the account of an active API key of an enabled account,
-- checked by the key's prefix and SHA-256 (comparing the digest here is safe: a timing
-- difference tells at most how many leading bytes of a SHA-256 digest matched, which gives no way
-- to build a key); or an account the caller has already authenticated (a browser session, whose
-- check refuses a disabled account; or the operator's own reads), which must exist. NULL when
-- neither. The order statement and every one-statement read start from it
-- (`accounts.repository.CALLER_ACCOUNT`).
CREATE OR REPLACE FUNCTION ordersvc_caller_account(p_prefix text, p_key_hash bytea, p_account_id bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN p_account_id IS NOT NULL THEN
        (SELECT a.id FROM accounts a WHERE a.id = p_account_id)
    ELSE
        (SELECT k.account_id FROM api_keys k JOIN accounts a ON a.id = k.account_id
         WHERE k.prefix = p_prefix AND k.key_hash = p_key_hash AND k.revoked_at IS NULL AND a.disabled_at IS NULL)
    END
$$;
