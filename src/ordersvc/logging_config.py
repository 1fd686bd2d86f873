"""Logging for `serve`: uvicorn's format, with API keys redacted from every logged URL.

Legacy clients carry their key in the query string (`/api?key=...`), and access logs print
the full path, so the key would otherwise land in log files."""

from __future__ import annotations

import logging
import re
from copy import deepcopy
from typing import Any
from urllib.parse import parse_qsl, urlencode

from uvicorn.config import LOGGING_CONFIG

_SECRET_NAMES = frozenset({"key", "api_key", "apikey", "token"})
_QUERY = re.compile(r"\?([^\s\"#]*)")


def _redact_query(match: re.Match[str]) -> str:
    """Names are compared after percent-decoding, as the application decodes them
    (`?%6Bey=...` is the key too); a query that does not parse is hidden whole."""
    try:
        fields = parse_qsl(match.group(1), keep_blank_values=True, strict_parsing=bool(match.group(1)))
    except ValueError:
        return "?[REDACTED]"
    redacted = [(name, "[REDACTED]" if name.strip().lower() in _SECRET_NAMES else value) for name, value in fields]
    return "?" + urlencode(redacted, safe="[]")


def redact(text: str) -> str:
    return _QUERY.sub(_redact_query, text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def logging_config() -> dict[str, Any]:
    config = deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": "ordersvc.logging_config.RedactSecretsFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_secrets"]
    config["loggers"]["ordersvc"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
