"""Liveness and readiness."""

from __future__ import annotations

import httpx

from tests.ops.conftest import app_client
from tests.support import free_port


class TestHealth:
    async def test_healthz_says_the_process_is_alive(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_readyz_checks_the_database_and_the_migration_head(self, client: httpx.AsyncClient, app) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "migration": app.state.migration_head}

    async def test_readyz_is_503_when_the_schema_is_behind_the_code(self, database_url: str) -> None:
        async with app_client() as (app, client):
            app.state.migration_head = "9999_future"
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reason"].endswith("this code needs 9999_future")

    async def test_unreachable_database_is_not_ready_but_alive(self, monkeypatch) -> None:
        nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
        monkeypatch.setenv("DATABASE_URL", nowhere)  # the app exports its URL: restored after the test
        async with app_client(database_url=nowhere) as (_, client):
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/readyz")
        assert (response.status_code, response.json()) == (
            503,
            {"status": "unavailable", "reason": "database unreachable"},
        )

    async def test_probes_are_not_in_the_api_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not {"/healthz", "/readyz", "/metrics"} & set(paths)


class TestHead:
    async def test_head_answers_as_get_does_with_headers_only(self, client: httpx.AsyncClient) -> None:
        for path in ("/healthz", "/", "/openapi.json", "/nope"):
            got, head = await client.get(path), await client.request("HEAD", path)
            assert head.status_code == got.status_code, path
            assert head.headers["content-type"] == got.headers["content-type"], path
            assert head.content == b"", path
        assert (await client.request("HEAD", "/api")).status_code == 405  # the legacy contract
        post_only = await client.request("HEAD", "/v1/auth/login")  # no GET there: no HEAD either
        assert (post_only.status_code, post_only.headers["allow"]) == (405, "POST")
