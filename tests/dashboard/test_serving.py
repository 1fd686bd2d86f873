"""The dashboard bundle as the service serves it (no browser needed), and the committed
OpenAPI snapshot the dashboard's types are generated from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ordersvc.dashboard.endpoints import STATIC_DIR

REPO = Path(__file__).resolve().parents[2]


class TestDashboardPage:
    async def test_root_serves_the_single_page_app_with_a_strict_policy(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<div id="app">' in response.text
        assert response.headers["cache-control"] == "no-cache"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"

    async def test_every_asset_the_page_names_is_served_and_cached_for_good(self, client: httpx.AsyncClient) -> None:
        page = (await client.get("/")).text
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page)
        assert any(a.endswith(".js") for a in assets)
        assert any(a.endswith(".css") for a in assets)
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.content == (STATIC_DIR / asset.lstrip("/")).read_bytes()

    @pytest.mark.parametrize(
        "path",
        ["/assets/missing.js", "/assets/..%2Findex.html", "/assets/.hidden", "/assets/%2e%2e%2f%2e%2e%2fconfig.py"],
    )
    async def test_unknown_or_escaping_asset_names_are_404(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(path)
        assert response.status_code == 404

    async def test_the_page_is_not_part_of_the_api_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/" not in paths
        assert not any(p.startswith("/assets") for p in paths)


class TestDashboardBuildInputs:
    def test_committed_openapi_snapshot_is_the_live_document(self, app: FastAPI) -> None:
        """web/openapi.json is what the dashboard's TypeScript types are generated from; CI
        regenerates both and the bundle and fails on any difference (see .ci/run)."""
        committed = json.loads((REPO / "web" / "openapi.json").read_text())
        assert committed == app.openapi(), "run `npm run openapi && npm run generate && npm run build` in web/"

    def test_the_bundle_is_inside_the_python_package(self) -> None:
        assert (STATIC_DIR / "index.html").is_file()
        assert STATIC_DIR.is_relative_to(REPO / "src" / "ordersvc")
