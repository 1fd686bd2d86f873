"""Text that PostgreSQL can store."""

from __future__ import annotations


def clean_text(text: str) -> str:
    """PostgreSQL text and JSONB hold neither NUL nor lone surrogates: replace them, so that a
    signed event is stored (never dropped) whatever odd bytes it carries."""
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)
