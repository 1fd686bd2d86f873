"""Error lines name the route's template, never a credential in the path: a consent link's
token that reaches an unhandled error or a database outage is not written to the log."""

from __future__ import annotations

import logging

import httpx
import pytest

from ordersvc.consent import service as consent

TOKEN = "eyJjb25zZW50IjoxfQ.c2VjcmV0LXNpZ25hdHVyZQ"  # shaped like a consent token


@pytest.mark.parametrize(
    ("failure", "level"),
    [
        (RuntimeError("a bug"), logging.ERROR),  # the catch-all: logged with its traceback
        (ConnectionRefusedError(), logging.WARNING),  # a database outage: 503
    ],
)
async def test_a_failing_consent_page_logs_the_template_not_the_token(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    level: int,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(consent, "describe", broken)
    with caplog.at_level(logging.INFO):
        try:
            response = await client.get(f"/consent/confirm/{TOKEN}")
            assert response.status_code in (500, 503)
        except RuntimeError:
            pass  # the ASGI transport re-raises what the server would log and drop
    service = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test's own client
    lines = [r for r in service if r.levelno >= level and "/consent/" in r.getMessage()]
    assert lines, [r.getMessage() for r in service]
    assert all("/consent/{action}/{token}" in r.getMessage() for r in lines)
    assert not any(TOKEN in r.getMessage() or TOKEN in str(r.args) for r in service)
