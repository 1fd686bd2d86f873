"""Email address validation shared by accounts and orders."""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from ordersvc.errors import ServiceError

MAX_EMAIL_LENGTH = 254


class InvalidEmail(ServiceError):
    status = 422
    code = "invalid_email"
    message = "Invalid email."
    field = "email"


def normalize_email(raw: str) -> str:
    """A syntactically valid address in normal form (domain lower-cased, Unicode NFC).

    No DNS lookup: validity must not depend on the network, and the recipient's own
    confirmation is what proves a mailbox is real.
    """
    if not raw or len(raw) > MAX_EMAIL_LENGTH:
        raise InvalidEmail()
    try:
        return _normalized(raw)
    except EmailNotValidError:
        raise InvalidEmail() from None


@lru_cache(maxsize=4096)
def _normalized(raw: str) -> str:
    """The same address comes again and again (a customer's recipients): validated once per
    process. Invalid ones raise, and are not cached."""
    return validate_email(raw, check_deliverability=False).normalized
