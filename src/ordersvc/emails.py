"""Email address validation shared by accounts and orders."""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

from ordersvc.errors import ServiceError

MAX_EMAIL_LENGTH = 254
_CASE_INSENSITIVE_LOCAL_PARTS = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


class InvalidEmail(ServiceError):
    status = 422
    code = "invalid_email"
    message = "Invalid email."
    field = "email"


def normalize_email(raw: str) -> str:
    """A syntactically valid address in normal form (domain lower-cased, Unicode NFC), as
    `email_validator` decides it.

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
    process. Invalid ones raise, and are not cached.

    Most new addresses are a plain ASCII local part at a domain seen before; for those the
    library's answer is the local part as given at the domain's normal form, which is looked up
    (`_domain`) instead of validating the whole address again (a tenth of a worker's CPU under
    bench/load.py with a new recipient on every order). Anything else, and any address the
    short way would not decide exactly as the library does, takes the library's whole check.
    tests/test_emails.py checks on generated addresses that both ways always agree."""
    local, at, domain_part = raw.rpartition("@")
    if (
        at
        and DOT_ATOM_TEXT.match(local)  # ASCII dot-atom: the library keeps it as it is
        and local.lower() not in _CASE_INSENSITIVE_LOCAL_PARTS  # these it lower-cases
    ):
        try:
            domain, ascii_domain = _domain(domain_part)
        except EmailNotValidError:
            pass  # the whole check says why
        else:
            normalized = f"{local}@{domain}"
            # The library's length limit, in UTF-8, on the address as given, normalized, and
            # with its domain in IDNA ASCII.
            if all(len(form.encode()) <= MAX_EMAIL_LENGTH for form in (raw, normalized, f"{local}@{ascii_domain}")):
                return normalized
    return validate_email(raw, check_deliverability=False).normalized


@lru_cache(maxsize=1024)
def _domain(domain_part: str) -> tuple[str, str]:
    """A domain's normal form and its IDNA ASCII form, as the library gives them for an address
    at that domain (the shortest local part: no length limit is reached sooner than with the
    real one)."""
    checked = validate_email(f"a@{domain_part}", check_deliverability=False)
    return checked.domain, checked.ascii_domain
