"""The catalogue of problem types: every `code` a REST answer can carry, with its title and what
it means, and the one function that writes a problem document's body.

A code is raised by an error class in its domain (`errors.ServiceError.code`) or by the HTTP
layer (`problems`, `ops.middleware`); this catalogue is where a client developer reads what it
means, at `GET /problems/{code}` (HTML for a browser, JSON otherwise) and in the OpenAPI
`ErrorCode` enum. `tests/test_problem_types.py` checks that every code the service can raise is
here, and that each title says more than the HTTP reason phrase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int  # the status it is sent with
    title: str  # a short, stable description of the problem (RFC 9457 `title`)
    about: str  # what it means and what to do, for the problem type's page


PROBLEM_TYPES: dict[str, ProblemType] = {
    # Credentials and sessions
    "unauthorized": ProblemType(
        401,
        "Missing or invalid credentials",
        "The request carries no API key, an unknown or revoked one, or a session that has ended (a worker "
        "route: no valid worker token). Send `Authorization: Bearer <key>` or `X-API-Key: <key>`, or sign in again.",
    ),
    "csrf_failed": ProblemType(
        403,
        "CSRF token missing or wrong",
        "A change sent with the browser session cookie must also send `X-CSRF-Token` with the value of the "
        "`ordersvc_csrf` cookie. API keys need no CSRF token.",
    ),
    "invalid_credentials": ProblemType(
        401, "Wrong email or password", "Sign-in failed. Repeated failures are throttled (`too_many_attempts`)."
    ),
    "totp_required": ProblemType(
        401,
        "Second factor needed",
        "Two-factor sign-in is on for this account: send `totp_code` (6 digits, or a recovery code) with the "
        "email and password.",
    ),
    "invalid_totp_code": ProblemType(
        401, "Wrong second-factor code", "The 6-digit code or recovery code is not valid; each code works once."
    ),
    "email_not_verified": ProblemType(
        403,
        "Email address not verified",
        "Follow the link sent to the address, or ask for a new one with `POST /v1/auth/resend-verification`.",
    ),
    "account_disabled": ProblemType(403, "Account disabled", "The operator has disabled this account."),
    "wrong_password": ProblemType(
        403, "Current password is wrong", "Changing the password, email or second factor needs the current password."
    ),
    "password_not_set": ProblemType(
        409,
        "No password yet",
        "The account signs in with an API key and has no password, so there is no current password to check. "
        "Set one through the emailed link: `POST /v1/auth/password-reset` with the account's email.",
    ),
    "password_required": ProblemType(
        422,
        "Choose a password",
        "A new account's verification link is where its password is chosen: send `password` with the token.",
    ),
    "password_not_expected": ProblemType(
        422,
        "No password for this link",
        "This link confirms a new email address and sets no password: send the token alone.",
    ),
    "weak_password": ProblemType(
        422, "Password too weak", "Choose a password of the allowed length that is not a common one."
    ),
    "invalid_token": ProblemType(
        400,
        "Link not valid",
        "The token of the link is not valid or was already used. Ask for a new link.",
    ),
    "expired_token": ProblemType(410, "Link expired", "The link's token has expired. Ask for a new link."),
    "totp_already_enabled": ProblemType(
        409, "Second factor already on", "Turn two-factor sign-in off first to enrol a new device."
    ),
    "totp_not_started": ProblemType(
        409, "Second-factor enrolment not started", "Start with `POST /v1/account/totp`, then confirm a code."
    ),
    "account_exists": ProblemType(409, "Account already exists", "An account with that email address already exists."),
    # Limits
    "rate_limited": ProblemType(
        429,
        "Rate limit reached",
        "Too many requests for this API key or session. Wait `Retry-After` seconds; the `RateLimit` header "
        "tells how much of the window is left.",
    ),
    "too_many_attempts": ProblemType(
        429,
        "Too many attempts",
        "Too many sign-in attempts or mail requests for this account or address. Wait `Retry-After` seconds.",
    ),
    # Orders and money
    "insufficient_balance": ProblemType(
        402,
        "Balance too low",
        "The balance does not cover the price (quantity / 1000 USD). Add funds with a deposit or a coupon, "
        "then send the order again.",
    ),
    "invalid_email": ProblemType(422, "Invalid email address", "The target is not a valid email address."),
    "invalid_quantity": ProblemType(
        422, "Quantity out of range", "An order's quantity is a whole number from 500 to 50000."
    ),
    "invalid_batch": ProblemType(
        422,
        "Wrong number of lines in a mass order",
        "`POST /v1/orders/batch` takes 1 to 100 lines; send more as several batches (each with its own "
        "Idempotency-Key).",
    ),
    "line_not_decided": ProblemType(
        503,
        "A line of a mass order was not decided",
        "In the answer of `POST /v1/orders/batch`, beside lines that have orders: the service was unavailable "
        "for this line. Send the batch again with the same Idempotency-Key (or the line with its own "
        "`idempotency_key`): the lines placed are replayed, never placed twice, and this one is decided.",
    ),
    "invalid_amount": ProblemType(422, "Invalid amount", "A USD amount with at most three decimals, above zero."),
    "recipient_opted_out": ProblemType(
        409,
        "Recipient has opted out",
        "The owner of the target mailbox has opted out of all messages from this service. The order is not "
        "placed and nothing is debited.",
    ),
    "order_not_cancelable": ProblemType(
        409, "Order already finished", "Only an order that has not finished can be canceled."
    ),
    "idempotency_conflict": ProblemType(
        409,
        "Idempotency key reused",
        "This `Idempotency-Key` was already used with a different request. Use a new key for a new request; "
        "send the same request to replay its answer.",
    ),
    "invalid_idempotency_key": ProblemType(
        422, "Invalid idempotency key", "An `Idempotency-Key` is 1 to 255 printable ASCII characters."
    ),
    "invalid_cursor": ProblemType(
        422,
        "Unknown page cursor",
        "`starting_after` or `ending_before` must be the id of an item of this list, as returned by it.",
    ),
    # Coupons
    "invalid_coupon_code": ProblemType(422, "Invalid coupon code", "A coupon code is 3-64 letters, digits, - or _."),
    "coupon_not_found": ProblemType(404, "Unknown coupon", "No coupon has that code."),
    "coupon_expired": ProblemType(409, "Coupon expired", "The coupon's validity has ended."),
    "coupon_disabled": ProblemType(409, "Coupon withdrawn", "The operator has withdrawn this coupon."),
    "coupon_exhausted": ProblemType(409, "Coupon used up", "The coupon has been redeemed as often as it may be."),
    "coupon_already_redeemed": ProblemType(409, "Coupon already redeemed", "Each account may redeem a coupon once."),
    "coupon_exists": ProblemType(409, "Coupon already exists", "A coupon with that code already exists."),
    # Deposits
    "unknown_network": ProblemType(404, "Unknown network", "The network is not one this service accepts."),
    "no_deposit_address": ProblemType(
        404, "No deposit address yet", "This account has no address on that network yet: ask for one with POST."
    ),
    "no_address_available": ProblemType(
        409,
        "No deposit address free",
        "Every address of this network is in use right now. Try again later or contact support.",
    ),
    "invalid_address": ProblemType(
        422, "Invalid deposit address", "A deposit address is 8-200 letters, digits or `:_.-`."
    ),
    "invalid_recycle_period": ProblemType(
        422, "Invalid recycle period", "The recycle period is a whole number of days, at least 1."
    ),
    "invalid_bonus_tier": ProblemType(
        422, "Invalid bonus tier", "A bonus tier is a threshold above 0 USD and a percentage above 0, at most 100."
    ),
    "invalid_tx_hash": ProblemType(
        422, "Invalid transaction hash", "A transaction hash is 64 hex digits, optionally prefixed with 0x."
    ),
    "deposit_not_unmatched": ProblemType(409, "Deposit already credited", "Only an unmatched deposit can be assigned."),
    "transfer_already_credited": ProblemType(
        409, "Transfer already credited", "That on-chain transfer is already credited as another deposit."
    ),
    "bad_signature": ProblemType(
        401, "Webhook signature does not verify", "The processor webhook's signature does not match its body."
    ),
    "invalid_payload": ProblemType(
        422, "Unreadable webhook payload", "The webhook is signed but is not a deposit this service can read."
    ),
    "processor_not_configured": ProblemType(
        404, "Processor not configured", "This payment processor is not configured on this server."
    ),
    "processor_unavailable": ProblemType(
        503, "Processor unreachable", "The processor's API could not be reached; the webhook should be redelivered."
    ),
    # Consent and fulfilment
    "consent_closed": ProblemType(409, "Request no longer open", "This confirmation request was already answered."),
    "worker_exists": ProblemType(409, "Worker already exists", "A worker with that name already exists."),
    "lease_not_held": ProblemType(
        409,
        "Order not held by this worker",
        "The worker's lease on this order expired and another worker claimed it, or the order is finished. "
        "Stop working on it.",
    ),
    "invalid_progress": ProblemType(
        409, "Delivered count cannot go back", "Delivered counts only go up, to at most the order's quantity."
    ),
    # The HTTP layer
    "not_found": ProblemType(404, "No such object", "Nothing with that id or path exists for this caller."),
    "method_not_allowed": ProblemType(
        405, "Method not supported here", "The path exists but not with this method: see the `Allow` header."
    ),
    # The operator's console (`/v1/admin`)
    "operator_session_required": ProblemType(
        401,
        "Operator session needed",
        "Console routes take only an operator's session cookie from `POST /v1/admin/auth/login` (a customer's API "
        "key or session never reaches them). Sessions end after 30 idle minutes and 12 hours at most.",
    ),
    "operator_sign_in_failed": ProblemType(
        401,
        "Operator sign-in failed",
        "The email, password or code is wrong, or the operator is disabled. Repeated failures are throttled.",
    ),
    "totp_enrolment_required": ProblemType(
        403,
        "Set up the authenticator first",
        "Operators sign in with a TOTP code: this session reaches only `/v1/admin/auth/totp/start` and "
        "`/v1/admin/auth/totp/confirm` until the first code is confirmed.",
    ),
    "totp_already_enrolled": ProblemType(
        409,
        "Authenticator already set up",
        "This operator's second factor is on; `ordersvc operators reset` clears it.",
    ),
    "operator_role_forbidden": ProblemType(
        403,
        "Not allowed for this role",
        "`support` operators read everything and may cancel orders, revoke a customer's keys or sessions and "
        "disable accounts; moving money, deposits, coupons, bonus tiers, suppressions, worker tokens and operators "
        "need `admin`.",
    ),
    "invalid_operator_link": ProblemType(
        400,
        "Operator link not valid",
        "The one-time link is wrong, used or expired: `ordersvc operators reset EMAIL` prints a new one.",
    ),
    "operator_exists": ProblemType(409, "Operator exists", "An operator with this email exists already."),
    "operator_not_found": ProblemType(404, "No such operator", "No operator has this id or email."),
    "last_admin": ProblemType(
        409, "Last admin", "The last active admin cannot be disabled or made `support`: make another admin first."
    ),
    "invalid_role": ProblemType(422, "Unknown role", "A role is `admin` or `support`."),
    "reason_required": ProblemType(
        422, "Reason needed", "A manual credit or debit needs a reason (1-500 characters): it is kept with the payment."
    ),
    "opt_out_is_final": ProblemType(
        409,
        "The recipient's opt-out is final",
        "The address opted out itself (a never-contact-me link, or the opt-out link in a delivery): no operator can "
        "take it off the suppression list. Only suppressions an operator added can be removed.",
    ),
    "consent_not_waiting": ProblemType(
        409,
        "Nothing to resend",
        "The consent request is confirmed, declined or expired: only a request still waiting for the recipient can "
        "be sent again.",
    ),
    "customer_not_found": ProblemType(404, "No such customer", "No customer account has this id."),
    "validation_error": ProblemType(
        422,
        "Request not valid",
        "A parameter or body field is missing, of the wrong type or unknown: `errors` names each one "
        "(`loc`, `msg`, `type`).",
    ),
    "invalid_params": ProblemType(422, "Invalid parameters", "A parameter is not valid: see `detail`."),
    "invalid_text": ProblemType(
        400,
        "Text not accepted",
        "The request holds text this service does not store: a NUL character, an unpaired surrogate or invalid "
        "UTF-8. In the path, query or headers the answer is 400; in the body, 422. `errors` says where.",
    ),
    "unsupported_media_type": ProblemType(
        415, "Body is not JSON", "Send the request body as `application/json` (with that `Content-Type`)."
    ),
    "body_too_large": ProblemType(413, "Request body too large", "The body is larger than the server accepts."),
    "service_unavailable": ProblemType(
        503,
        "Temporarily unavailable",
        "The database could not be reached. Retry after `Retry-After` seconds; an `Idempotency-Key` makes the "
        "retry of a POST safe.",
    ),
    "too_many_exports": ProblemType(
        429,
        "Exports still streaming",
        "Your other CSV exports (at most `ORDERSVC_EXPORT_MAX_PER_CALLER`, default 2, at once) are still "
        "streaming. Finish or close one, then retry after `Retry-After` seconds.",
    ),
    "exports_busy": ProblemType(
        503,
        "Export capacity in use",
        "The server is streaming as many CSV exports as it serves at once (`ORDERSVC_EXPORT_MAX_CONCURRENT`). "
        "Retry after `Retry-After` seconds.",
    ),
    # Webhooks and live events
    "webhook_endpoint_not_found": ProblemType(
        404, "No such webhook endpoint", "The account has no webhook endpoint with this id (it may have been deleted)."
    ),
    "webhook_delivery_not_found": ProblemType(
        404,
        "No such webhook delivery",
        "The endpoint has no delivery with this id. Deliveries are kept 30 days.",
    ),
    "too_many_webhook_endpoints": ProblemType(
        409, "Webhook endpoint limit reached", "An account has at most 10 webhook endpoints: delete one first."
    ),
    "invalid_webhook_url": ProblemType(
        422,
        "Webhook URL refused",
        "An endpoint's URL must be https:// with a host, no user name or password and no fragment, and must not "
        "point at a private, loopback, link-local, multicast or otherwise non-public address. The detail says "
        "which rule it broke.",
    ),
    "webhook_delivery_pending": ProblemType(
        409,
        "Delivery still being tried",
        "A delivery that is still pending (being retried) cannot be resent: wait until it succeeds or fails.",
    ),
    "too_many_streams": ProblemType(
        429,
        "Too many live event streams",
        "An account has at most 5 open `GET /v1/events/stream` connections per server: close one, then retry "
        "after `Retry-After` seconds.",
    ),
    "streams_busy": ProblemType(
        503,
        "Live event capacity in use",
        "The server holds as many live event streams as it takes. Retry after `Retry-After` seconds (or poll).",
    ),
    "invalid_threshold": ProblemType(
        422,
        "Invalid alert threshold",
        'The low-balance threshold is a positive USD amount with at most three decimals (`"25.00"`), or null.',
    ),
    "timeout": ProblemType(
        503,
        "Request took too long",
        "The request was not completed in time and nothing it would have changed was changed. Retry it.",
    ),
    "internal_error": ProblemType(
        500,
        "Unexpected server error",
        "Something went wrong on our side; the operator's log has the cause under the request id.",
    ),
    "http_error": ProblemType(400, "HTTP error", "An HTTP-level error without a more specific code."),
}

REQUEST_ID_STATE = "request_id"  # where the request's id is kept in the ASGI scope's state

# Codes that only the legacy action API and the panel API v2 answer (as `{"error": ...}`), never
# a REST route.
LEGACY_ONLY = frozenset(
    {
        "unknown_action",
        "incorrect_order_id",
        "incorrect_request",
        "incorrect_service_id",
        "refill_disabled",
        "incorrect_refill_id",
    }
)


def problem_type_path(code: str, root_path: str = "") -> str:
    return f"{root_path}/problems/{code}"


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    request_id: str | None = None,
    root_path: str = "",
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem document: `type` resolves to the code's page, `title` is the code's,
    and `request_id` is the one in the `X-Request-ID` header (what support asks for)."""
    known = PROBLEM_TYPES.get(code)
    body: dict[str, Any] = {
        "type": problem_type_path(code, root_path),
        "title": known.title if known is not None else code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request_id is not None:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = errors
    return body
