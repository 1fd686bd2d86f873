"""Text from clients and from the outside world: what PostgreSQL can store, what a comparison
can take, and digits that are ASCII.

PostgreSQL `text` and `jsonb` hold neither NUL nor lone surrogates (asyncpg cannot even encode
the latter): such a string that reaches a query is a 500. `str.isdigit()` and `int()` take every
Unicode digit (Arabic-Indic, full-width, and for `isdigit` superscripts), and
`hmac.compare_digest` raises on non-ASCII `str`: where a field means ASCII digits, ask
`is_ascii_digits`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# What the request guard says, and what the legacy API puts in place of such a value.
UNACCEPTABLE_TEXT_MESSAGE = "Text may not contain NUL characters, unpaired surrogates or invalid UTF-8."
REPLACEMENT = "\ufffd"


def is_storable(text: str) -> bool:
    """No NUL and no lone surrogate: PostgreSQL can store it and UTF-8 can encode it."""
    if text.isascii():
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def clean_text(text: str) -> str:
    """PostgreSQL text and JSONB hold neither NUL nor lone surrogates: replace them, so that a
    signed event is stored (never dropped) whatever odd bytes it carries."""
    return text if is_storable(text) else _UNSTORABLE.sub(REPLACEMENT, text)


def is_ascii_digits(text: str) -> bool:
    """One or more of 0-9, and nothing else: no Arabic-Indic, full-width or superscript digits,
    which `str.isdigit()` accepts and `int()` or `compare_digest` then chokes on or misreads."""
    return text.isascii() and text.isdigit()


def shown(text: str) -> str:
    """The text with its unstorable characters written as `\\uXXXX`: safe to put in an answer."""
    return text if is_storable(text) else _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


Location = tuple[str | int, ...]


def unstorable_in(value: object) -> Location | None:
    """Where the first unstorable string (a value or an object key) is in decoded JSON, or None.
    Iterative: a document nested as deep as the JSON parser allows must not exhaust the stack."""
    stack: list[tuple[object, Location]] = [(value, ())]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return where
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str) and not is_storable(key):
                    return (*where, shown(key))
                stack.append((child, (*where, str(key))))
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in reversed(list(enumerate(item))))
    return None


def form_pairs(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """`name=value` pairs of a query string or an urlencoded form, percent- and plus-decoded to
    bytes (before any UTF-8 decoding, which would hide invalid sequences behind U+FFFD)."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        yield unquote_to_bytes(name.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" "))


def decodes_to_storable(raw: bytes) -> bool:
    """Valid UTF-8 with no NUL."""
    if b"\x00" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def unstorable_form_field(raw: bytes) -> str | None:
    """The name of the first field of a query string or urlencoded form whose name or value is
    not storable text once decoded (`%00`, invalid UTF-8 such as `%ED%A0%80`), or None."""
    if raw.isascii() and b"%" not in raw and b"\x00" not in raw:
        return None
    for name, value in form_pairs(raw):
        if not (decodes_to_storable(name) and decodes_to_storable(value)):
            return shown(name.decode("utf-8", "backslashreplace"))
    return None
