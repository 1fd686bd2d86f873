"""Deeply nested webhook bodies are refused with a 4xx before anything recursive runs, and log
no traceback: the NOWPayments signature needs the body parsed and re-serialised first."""

from __future__ import annotations

import json
import logging
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.deposits.payloads import MAX_DEPTH, load_json_object, nesting_depth
from tests.deposits.conftest import chain_headers, nowpayments_headers

# 1.8 KB, nested 901 deep: passes json.loads, and broke every recursive step after it.
DEEP = b'{"a":' + b"[" * 900 + b"]" * 900 + b"}"
A_SIGNATURE = {"x-nowpayments-sig": "ab" * 64}  # shaped like one; it cannot match


async def deposits_count(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as session:
        return (await session.execute(sa.text("SELECT count(*) FROM deposits"))).scalar_one()


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "RecursionError" not in caplog.text
    assert "Traceback" not in caplog.text


class TestNowPayments:
    async def test_a_body_nested_900_deep_is_4xx_without_a_traceback(
        self, hooks: httpx.AsyncClient, sessionmaker, caplog: pytest.LogCaptureFixture
    ) -> None:
        before = await deposits_count(sessionmaker)
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):
                response = await hooks.post(
                    "/webhooks/nowpayments", content=DEEP, headers={**A_SIGNATURE, "Content-Type": "application/json"}
                )
                assert 400 <= response.status_code < 500
                assert response.json()["code"] == "bad_signature"
        no_traceback(caplog)
        assert await deposits_count(sessionmaker) == before

    async def test_deep_even_when_signed_is_refused(self, hooks: httpx.AsyncClient) -> None:
        payload = {"payment_id": 1, "payment_status": "finished", "x": json.loads(b"[" * 100 + b"]" * 100)}
        response = await hooks.post(
            "/webhooks/nowpayments", content=json.dumps(payload).encode(), headers=nowpayments_headers(payload)
        )
        assert response.status_code == 401

    async def test_without_a_signature_header_the_body_is_not_looked_at(self, hooks: httpx.AsyncClient) -> None:
        for headers in [{}, {"x-nowpayments-sig": "not-hex"}, {"x-nowpayments-sig": "ab" * 63}]:
            response = await hooks.post("/webhooks/nowpayments", content=DEEP, headers=headers)
            assert (response.status_code, response.json()["code"]) == (401, "bad_signature")

    async def test_a_body_declared_as_something_else_than_json_is_415(
        self, hooks: httpx.AsyncClient, sessionmaker
    ) -> None:
        payload = {"payment_id": 2, "payment_status": "waiting"}
        headers = {**nowpayments_headers(payload), "Content-Type": "text/plain"}
        response = await hooks.post("/webhooks/nowpayments", content=json.dumps(payload).encode(), headers=headers)
        assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
        ok = {**nowpayments_headers(payload), "Content-Type": "application/json; charset=utf-8"}
        response = await hooks.post("/webhooks/nowpayments", content=json.dumps(payload).encode(), headers=ok)
        assert response.json() == {"status": "not_final"}

    async def test_an_ipn_larger_than_32_kib_is_refused(self, hooks: httpx.AsyncClient) -> None:
        payload = {"payment_id": 3, "payment_status": "waiting", "pad": "x" * 33_000}
        response = await hooks.post(
            "/webhooks/nowpayments", content=json.dumps(payload).encode(), headers=nowpayments_headers(payload)
        )
        assert response.status_code == 401


class TestSignedWebhooks:
    async def test_a_signed_chain_body_nested_900_deep_is_422_without_a_traceback(
        self, hooks: httpx.AsyncClient, sessionmaker, caplog: pytest.LogCaptureFixture
    ) -> None:
        body = json.dumps(
            {"network": "BTC", "address": f"bc1q{uuid.uuid4().hex}", "tx_hash": "ab" * 32, "amount_usd": "1",
             "confirmations": 9, "note": json.loads(b"[" * 900 + b"]" * 900)}
        ).encode()  # fmt: skip
        before = await deposits_count(sessionmaker)
        with caplog.at_level(logging.DEBUG):
            response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert (response.status_code, response.json()["code"]) == (422, "invalid_payload")
        no_traceback(caplog)
        assert await deposits_count(sessionmaker) == before


class TestNestingDepth:
    def test_counts_arrays_and_objects_but_not_brackets_in_strings(self) -> None:
        assert nesting_depth(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"]]]"}') == 3
        assert nesting_depth(b"[]" * 1000) == 1
        assert nesting_depth(b"") == 0
        assert nesting_depth(b"[" * 900 + b"]" * 900) == 900

    def test_loads_up_to_the_limit_and_no_deeper(self) -> None:
        at_limit = b'{"a":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
        assert load_json_object(at_limit) is not None
        assert load_json_object(b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}") is None
        assert load_json_object(b"[1]") is None
        assert load_json_object(b"\xff") is None
        assert load_json_object(b'{"deep": "' + b"[" * 5000 + b'"}') == {"deep": "[" * 5000}

    def test_escapes_and_unterminated_strings_are_counted_right(self) -> None:
        assert nesting_depth(b'["\\\\", ["\\\\\\"]"]]') == 2  # an escaped backslash ends no string
        assert nesting_depth(b'[["' + b'\\"' * 100) == 2  # unterminated: brackets before it count

    def test_an_unterminated_run_of_escaped_quotes_takes_no_quadratic_time(self) -> None:
        """The attack of the review: `[`*33, then `"` and `\\"` to the end of a body. One regex
        for a string with escapes rescanned to the end from each quote: 32 KB took 4.6 s of a
        worker's event loop, before the signature was checked. Linear now: 128 KB (which took
        over a minute) must be far under a second, whatever the machine."""
        body = b"[" * 33 + b'"' + b'\\"' * 64_000
        started = time.perf_counter()
        assert nesting_depth(body) == 33
        assert time.perf_counter() - started < 1.0
