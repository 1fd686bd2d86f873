"""Each processor's verified payload -> a DepositEvent when it is a final, paid deposit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ordersvc.deposits.hashes import normalise_address, normalise_tx_hash
from ordersvc.deposits.models import Network, Processor
from ordersvc.deposits.service import DepositEvent, usd_to_mills
from ordersvc.errors import InvalidParams
from ordersvc.text import clean_text


class InvalidPayload(InvalidParams):
    code = "invalid_payload"
    message = "The webhook payload is signed but not a deposit we can read."


def _text(payload: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = payload.get(key)
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return clean_text(str(value).strip()[:200])
    if required:
        raise InvalidPayload(f"The webhook payload has no usable {key!r}.")
    return None


def chain_event(payload: dict[str, Any], required_confirmations: dict[str, int]) -> DepositEvent | None:
    """The operator's chain watcher: `{network, address, tx_hash, amount_usd, confirmations}`.
    Final once the network's confirmations are reached; None before that."""
    network_text = _text(payload, "network") or ""
    try:
        network = Network(network_text)
    except ValueError:
        raise InvalidPayload(f"Unknown network {network_text!r}.") from None
    address, tx_hash = _text(payload, "address"), _text(payload, "tx_hash")
    amount = usd_to_mills(payload.get("amount_usd"))
    confirmations = payload.get("confirmations")
    if amount is None or not isinstance(confirmations, int) or isinstance(confirmations, bool):
        raise InvalidPayload("amount_usd must be a positive amount and confirmations an integer.")
    if confirmations < required_confirmations.get(network.value, 1):
        return None
    # Canonical already: both are in the external id.
    tx_hash, address = normalise_tx_hash(network.value, tx_hash), normalise_address(network.value, address)
    return DepositEvent(
        processor=Processor.CHAIN.value,
        external_id=f"{network.value}:{tx_hash}:{address}",
        amount_mills=amount,
        payload=payload,
        network=network.value,
        address=address,
        tx_hash=tx_hash,
    )


# NOWPayments `pay_currency` codes of the networks we take.
NOWPAYMENTS_NETWORKS = {
    "usdttrc20": Network.USDT_TRC20,
    "usdterc20": Network.USDT_ERC20,
    "btc": Network.BTC,
    "ltc": Network.LTC,
}
NOWPAYMENTS_FINAL = {"finished", "partially_paid"}


def _decimal(value: Any) -> Decimal | None:
    """A positive amount of sane magnitude (1e-18 .. 1e15), else None."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number <= 0 or not -18 <= number.adjusted() <= 15:
        return None
    return number


def nowpayments_received_usd(payload: dict[str, Any]) -> int | None:
    """The USD value actually received: `actually_paid_at_fiat` (in the price currency) when
    NOWPayments filled it, otherwise the price scaled by the share of the crypto amount
    actually paid. Only USD-priced payments are read: anything else is refused, not guessed."""
    if str(payload.get("price_currency", "")).lower() != "usd":
        raise InvalidPayload("Only payments priced in USD are credited (price_currency must be usd).")
    fiat = usd_to_mills(payload.get("actually_paid_at_fiat"))
    if fiat is not None:
        return fiat
    price, paid, due = (_decimal(payload.get(k)) for k in ("price_amount", "actually_paid", "pay_amount"))
    if price is None or paid is None or due is None:
        return None
    return usd_to_mills(price * paid / due)


def nowpayments_event(payload: dict[str, Any]) -> DepositEvent | None:
    """An IPN: credited on `finished`, or `partially_paid` for what was received; deduplicated
    on `payment_id`. Other statuses are progress reports: None. `payin_hash` is normalised
    with every other processor's hashes, when the deposit is recorded."""
    if payload.get("payment_status") not in NOWPAYMENTS_FINAL:
        return None
    payment_id = _text(payload, "payment_id")
    amount = nowpayments_received_usd(payload)
    if amount is None:
        raise InvalidPayload("The IPN does not say how many USD were received.")
    network = NOWPAYMENTS_NETWORKS.get(str(payload.get("pay_currency", "")).lower())
    # NOWPayments gives each payment its own address, so the account is best named by the
    # `order_id` the payment was created with (the account's email); else the address.
    order_id = _text(payload, "order_id", required=False)
    return DepositEvent(
        processor=Processor.NOWPAYMENTS.value,
        external_id=f"{payment_id}",
        amount_mills=amount,
        payload=payload,
        network=network.value if network else _text(payload, "pay_currency", required=False),
        address=_text(payload, "pay_address", required=False),
        tx_hash=_text(payload, "payin_hash", required=False),
        account_email=order_id if order_id and "@" in order_id else None,
    )
