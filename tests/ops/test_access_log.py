"""The access line written directly (`logging_config.log_request`) is the line structlog's chain
writes: the same fields in the same order, the same redaction, the same timestamp format."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from ordersvc import logging_config

FIELDS = {
    "request_id": "req-1",
    "method": "GET",
    "path": "/v1/orders/osk_abcdefghijklmnop",  # a key pasted into a path
    "query": "key=osk_secret123456&limit=5",
    "route": "/v1/orders/{order_id}",
    "status": 404,
    "duration_ms": 1.25,
    "client": "127.0.0.1",
}


@pytest.fixture
def json_logging() -> Iterator[io.StringIO]:
    """The chain `configure_logging("json")` builds, on a buffer: structlog into the standard
    library, the JSON formatter on the `ordersvc` handler, and that handler for the direct line.
    (`configure_logging` itself would close the test run's own handlers: see the subprocess test.)"""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging_config.json_formatter())
    logger = logging.getLogger("ordersvc")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)  # setLevel, not `.level =`: it clears the loggers' level caches
    logging_config.configure_structlog()
    logging_config._access_handler = handler
    try:
        yield buffer
    finally:
        logging_config._access_handler = None
        structlog.reset_defaults()
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


class TestAccessLine:
    def test_the_direct_line_equals_structlogs(self, json_logging: io.StringIO) -> None:
        assert logging_config._access_handler is not None  # the direct path is on
        logging_config.log_request(**FIELDS)
        direct = json_logging.getvalue()
        json_logging.seek(0)
        json_logging.truncate()
        with structlog.contextvars.bound_contextvars(request_id="req-1"):
            structlog.get_logger("ordersvc.access").info("request", **FIELDS)
        chained = json_logging.getvalue()

        assert direct.endswith("\n")
        assert direct.count("\n") == 1
        first, second = json.loads(direct), json.loads(chained)
        assert STAMP.match(first.pop("timestamp"))
        assert STAMP.match(second.pop("timestamp"))
        assert list(first.items()) == list(second.items())  # same fields, same order, same values
        assert "osk_abcdefghijklmnop" not in direct
        assert "osk_secret123456" not in direct
        assert first["path"] == "/v1/orders/osk_[REDACTED]"
        assert first["query"] == "key=osk_[REDACTED]&limit=5"  # token-shaped (the middleware hides the value too)
        assert first["event"] == "request"
        assert first["logger"] == "ordersvc.access"
        assert first["level"] == "info"

    def test_nothing_is_written_below_the_level(self, json_logging: io.StringIO) -> None:
        logging.getLogger("ordersvc").setLevel(logging.WARNING)
        logging_config.log_request(**FIELDS)
        assert json_logging.getvalue() == ""

    def test_a_filter_on_the_handler_is_respected(self, json_logging: io.StringIO) -> None:
        handler = logging.getLogger("ordersvc").handlers[0]
        handler.addFilter(lambda record: False)  # drops everything
        try:
            logging_config.log_request(**FIELDS)
        finally:
            handler.filters.clear()
        assert json_logging.getvalue() == ""

    def test_a_broken_stream_never_breaks_the_request(
        self, json_logging: io.StringIO, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A write that fails (a closed pipe, a full disk) is left to logging's own error
        handling, as `Handler.emit` does, instead of failing the request."""
        json_logging.close()
        logging_config.log_request(**FIELDS)  # does not raise
        assert "I/O operation on closed file" in capsys.readouterr().err  # logging reported it

    def test_configure_logging_writes_json_directly_and_other_formats_through_structlog(self) -> None:
        code = (
            "from ordersvc import logging_config as c\n"
            "c.configure_logging('console'); assert c._access_handler is None\n"
            "c.configure_logging('json'); assert c._access_handler is not None\n"
            "c.log_request(request_id='r', method='GET', path='/healthz', query='', route='/healthz',"
            " status=200, duration_ms=0.5, client=None)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        line = json.loads(done.stderr.strip().splitlines()[-1])
        assert line["event"] == "request"
        assert line["path"] == "/healthz"
        assert line["status"] == 200


class TestRecipientAddresses:
    """A recipient's address is personal data: it travels in a query parameter or a body, never
    in a path, and the log hides the value of `email` however its name is encoded."""

    @pytest.mark.parametrize(
        ("query", "logged"),
        [
            ("email=billgates%40microsoft.com", "email=[REDACTED]"),
            ("%65mail=billgates%40microsoft.com&limit=5", "email=[REDACTED]&limit=5"),
            (
                "key=osk_x1234567&action=add&email=a%40b.c&quantity=500",
                "key=[REDACTED]&action=add&email=[REDACTED]&quantity=500",
            ),
            ("recipient=a%40b.c&status=pending", "recipient=[REDACTED]&status=pending"),  # the console's order filter
            ("q=bill", "q=[REDACTED]"),  # its customer search
            ("object_type=recipient&object_id=a%40b.c", "object_type=recipient&object_id=[REDACTED]"),  # its audit
            ("actor=ops%40example.com&action=payment.", "actor=[REDACTED]&action=payment."),
        ],
    )
    def test_the_query_hides_the_address(self, query: str, logged: str) -> None:
        assert logging_config.redact_query_string(query) == logged

    def test_no_route_takes_an_address_in_its_path(self) -> None:
        from ordersvc.main import create_app

        paths = create_app().openapi()["paths"]
        assert "/v1/admin/recipients" in paths
        assert not [path for path in paths if "{email}" in path or "{address}" in path]
