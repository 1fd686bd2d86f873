"""Logging for `serve`: uvicorn's format, with API keys redacted from every logged URL.

Legacy clients carry their key in the query string (`/api?key=...`), and access logs print
the full path, so the key would otherwise land in log files."""

from __future__ import annotations

import logging
import re
from copy import deepcopy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_SECRET_QUERY_PARAM = re.compile(r"(?i)([?&](?:key|api_key|apikey|token)=)[^&#\s\"]*")


def redact(text: str) -> str:
    return _SECRET_QUERY_PARAM.sub(r"\1[REDACTED]", text)


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
