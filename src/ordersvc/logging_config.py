"""Structured logging for `serve`: one JSON object per line (structlog), for uvicorn's, the
app's and the access log alike, each with the request id of the request it belongs to.

No API key, worker token or signature may reach a log line. Legacy clients carry their key in
the query string (`/api?key=...`), so every string is scrubbed on its way out: secret query
parameters, anything shaped like one of our tokens, and fields named like a credential."""

from __future__ import annotations

import datetime
import json
import logging
import logging.config
import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from structlog.types import EventDict, Processor

# Query parameters whose values never reach a log: credentials, and what names a person (personal
# data): a legacy client's `email=`, the console's `?email=` lookups, its order filter `recipient=`,
# its customer search `q=`, the audit log's `object_id=` (an address, for a suppression) and its
# `actor=` (an operator's address).
_HIDDEN_QUERY_NAMES = frozenset({"key", "api_key", "apikey", "token", "email", "recipient", "q", "object_id", "actor"})
_SECRET_FIELDS = frozenset(
    {"authorization", "api_key", "apikey", "key", "token", "signature", "password", "secret", "x-api-key", "cookie"}
)
_QUERY = re.compile(r"\?([^\s\"#]*)")
# API keys (osk_) and worker tokens (owk_): a random tail after the prefix.
_TOKEN = re.compile(r"\b(osk|owk)_[A-Za-z0-9_-]{4,}")


def _redact_query(match: re.Match[str]) -> str:
    """Names are compared after percent-decoding, as the application decodes them
    (`?%6Bey=...` is the key too); a query that does not parse is hidden whole."""
    try:
        fields = parse_qsl(match.group(1), keep_blank_values=True, strict_parsing=bool(match.group(1)))
    except ValueError:
        return "?[REDACTED]"
    hidden = _HIDDEN_QUERY_NAMES
    redacted = [(name, "[REDACTED]" if name.strip().lower() in hidden else value) for name, value in fields]
    return "?" + urlencode(redacted, safe="[]")


def redact(text: str) -> str:
    """`text` with secret query parameters and anything token-shaped replaced."""
    if "?" not in text and "osk_" not in text and "owk_" not in text:
        return text  # most strings of most lines: nothing to look for
    return _TOKEN.sub(r"\1_[REDACTED]", _QUERY.sub(_redact_query, text))


def loggable_path(scope: MutableMapping[str, Any]) -> str:
    """The request's path, unless a path parameter is a credential (the consent pages' signed
    tokens): then the route's template. Every log line that names a path uses this."""
    template = getattr(scope.get("route"), "path", None)
    if template is not None and "{token}" in template:
        return str(template)
    return str(scope["path"])


def redact_query_string(query: str) -> str:
    return redact(f"?{query}")[1:] if query else ""


def redact_event(logger: Any, method: str, event: EventDict) -> EventDict:
    for name, value in event.items():
        if name.lower() in _SECRET_FIELDS:
            event[name] = "[REDACTED]"
        elif isinstance(value, str):
            event[name] = redact(value)
    return event


def _processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.format_exc_info,
        redact_event,
    ]


def configure_structlog() -> None:
    """structlog loggers hand their events to the standard library, formatted below."""
    structlog.configure(
        processors=[*_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )


def console_formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )


def logging_config(log_format: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn (`log_config=`) and the app: every record,
    whoever logs it, leaves as one JSON line on stderr."""
    formatter = (
        "ordersvc.logging_config.json_formatter"
        if log_format == "json"
        else "ordersvc.logging_config.console_formatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter}},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "ordersvc": {"handlers": ["default"], "level": level, "propagate": False},
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


ACCESS_LOGGER = "ordersvc.access"
_access = logging.getLogger(ACCESS_LOGGER)
_ordersvc = logging.getLogger("ordersvc")
_access_structured = structlog.get_logger(ACCESS_LOGGER)
_access_handler: logging.StreamHandler[Any] | None = None  # set when the JSON lines can be written directly


def log_request(**fields: Any) -> None:
    """The access line of one request.

    With `configure_logging`'s JSON output, the line is written here, the same JSON the chain
    above would write (same fields, order, redaction and timestamp) at a fraction of its cost:
    structlog's processors, a LogRecord and the formatter took about 30 us per request, a tenth
    of a worker's CPU under bench/load.py. Any other set-up (another format, a handler added or
    filtered since, a write that fails) goes through structlog and logging's own handling."""
    handler = _access_handler
    handlers = _ordersvc.handlers
    if (
        handler is None
        or len(handlers) != 1
        or handlers[0] is not handler
        or handler.filters
        or handler.level > logging.INFO
    ):
        _access_structured.info("request", **fields)
        return
    if not _access.isEnabledFor(logging.INFO):
        return
    event = {
        **fields,
        "event": "request",
        "level": "info",
        "logger": ACCESS_LOGGER,
        "timestamp": datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z"),
    }
    line = json.dumps(redact_event(None, "info", event)) + "\n"
    handler.acquire()
    try:
        handler.stream.write(line)
        handler.flush()
        written = True
    except Exception:  # a closed or broken stream: let logging report it, as it would have
        written = False
    finally:
        handler.release()
    if not written:
        _access_structured.info("request", **fields)


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    global _access_handler
    logging.config.dictConfig(logging_config(log_format, level))
    configure_structlog()
    handlers = logging.getLogger("ordersvc").handlers
    only = handlers[0] if len(handlers) == 1 else None
    _access_handler = only if log_format == "json" and type(only) is logging.StreamHandler else None
