"""Exact money at the edges. The core counts integer mills: 1 mill = 0.001 USD.

`price = quantity / 1000 USD`, so an order's price in mills equals its quantity.
"""

from __future__ import annotations

import re

from ordersvc.errors import ServiceError

MILLS_PER_USD = 1000
# Far above any real top-up, far below BIGINT: a typo of a few digits is refused.
MAX_CREDIT_MILLS = 1_000_000_000 * MILLS_PER_USD

_USD_RE = re.compile(r"^(?P<int>[0-9]{1,15})(?:\.(?P<frac>[0-9]{1,3}))?$")


class InvalidAmount(ServiceError):
    status = 422
    code = "invalid_amount"
    message = "Invalid amount."


def parse_usd(text: str) -> int:
    """Parse a positive USD amount such as `50`, `50.5` or `0.001` into mills.

    More than three decimals, signs, exponents, NaN and zero are refused: an operator's typo
    must never become a different amount.
    """
    match = _USD_RE.match(text.strip())
    if match is None:
        raise InvalidAmount(f"Invalid amount {text!r}: use a positive number of USD with at most 3 decimals.")
    mills = int(match["int"]) * MILLS_PER_USD + int((match["frac"] or "").ljust(3, "0"))
    if mills <= 0:
        raise InvalidAmount(f"Invalid amount {text!r}: it must be more than zero.")
    if mills > MAX_CREDIT_MILLS:
        raise InvalidAmount(f"Invalid amount {text!r}: more than {MAX_CREDIT_MILLS // MILLS_PER_USD} USD.")
    return mills


def format_usd(mills: int) -> str:
    """Render mills with at least two decimals and no float artefacts: 125500 -> `125.50`,
    1234 -> `1.234`, -10000 -> `-10.00`, 0 -> `0.00`."""
    sign = "-" if mills < 0 else ""
    whole, frac = divmod(abs(mills), MILLS_PER_USD)
    frac_text = f"{frac:03d}"
    if frac_text.endswith("0"):
        frac_text = frac_text[:2]
    return f"{sign}{whole}.{frac_text}"
