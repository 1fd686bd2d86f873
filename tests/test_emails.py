"""`normalize_email` decides every address exactly as `email_validator` does: its short way for
plain addresses at a known domain (`emails._normalized`) never answers otherwise than the
library's whole check."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersvc import emails
from ordersvc.emails import InvalidEmail, normalize_email


def library(raw: str) -> str | None:
    """The library's own answer (None: invalid), as `normalize_email` wraps it."""
    if not raw or len(raw) > emails.MAX_EMAIL_LENGTH:
        return None
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(raw: str) -> str | None:
    emails._normalized.cache_clear()  # each address and domain decided afresh, never from a cache
    emails._domain.cache_clear()
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return None


def warm(raw: str) -> str | None:
    """With the domain already known (the short way's case), the address itself not."""
    emails._normalized.cache_clear()
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return None


# Local parts: ASCII atext, dots, the characters of quoting and display names, non-ASCII letters
# (composed and decomposed), and the case-insensitive mailbox names.
LOCAL_CHARS = st.sampled_from(
    [*"aZ09._-+!#$%&'*/=?^`{|}~\"\\ <>()[],;:@", "\u00e9", "e\u0301", "\u00df", "\u037e", "\u0131"]
)
LOCALS = st.one_of(
    st.lists(LOCAL_CHARS, min_size=0, max_size=70).map("".join),
    st.sampled_from(["postmaster", "Abuse", "HOSTMASTER", "webmaster", "noc", "security", "a" * 64, "a" * 65]),
)
LABEL_CHARS = st.sampled_from([*"abcXYZ019-_", "\u00e9", "\u00c4", "\u00df", "\u0301", "\u0131", "\ufe52", "\u3002"])
LABELS = st.one_of(
    st.lists(LABEL_CHARS, min_size=0, max_size=12).map("".join),
    st.sampled_from(
        ["xn--bcher-kva", "xn--zz", "localhost", "invalid", "test", "onion", "arpa", "local", "a" * 63, "a" * 64]
    ),
)
DOMAINS = st.one_of(
    st.lists(LABELS, min_size=1, max_size=5).map(".".join),
    st.sampled_from(
        ["example.com", "EXAMPLE.COM", "Example.Org", "example.com.", "[127.0.0.1]", "123.123", "b\u00fccher.de"]
    ),
    st.lists(st.sampled_from(["a" * 63, "b" * 40]), min_size=3, max_size=5).map(lambda ls: ".".join(ls) + ".com"),
)


@settings(max_examples=3000, deadline=None)
@given(local=LOCALS, domain=DOMAINS, at=st.sampled_from(["@", "@", "@@", ""]))
def test_every_address_is_decided_as_the_library_decides_it(local: str, domain: str, at: str) -> None:
    raw = f"{local}{at}{domain}"
    expected = library(raw)
    assert ours(raw) == expected
    assert warm(raw) == expected  # the domain is cached now: the short way, if it applies


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice.Smith+tag@EXAMPLE.com", "Alice.Smith+tag@example.com"),
        ("POSTMASTER@Example.com", "postmaster@example.com"),  # the library lower-cases these
        ("user@xn--bcher-kva.de", "user@bücher.de"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_plain_addresses_keep_their_local_part_and_normalize_the_domain(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected
    assert normalize_email(raw) == library(raw)


@pytest.mark.parametrize(
    "raw",
    ["user@localhost", "user@example", "us..er@example.com", ".user@example.com",
     "user@-example.com", "a@" + "b" * 250 + ".com", "user@exa mple.com", "\"quoted\"@example.com"],
)  # fmt: skip
def test_invalid_addresses_are_refused(raw: str) -> None:
    assert library(raw) is None
    with pytest.raises(InvalidEmail):
        normalize_email(raw)
