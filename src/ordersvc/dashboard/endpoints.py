"""Serves the dashboard's built bundle: `index.html` at `/`, hashed assets under `/assets/`; and
the API reference at `/docs` (Swagger UI's files, copied into the bundle from npm, under
`/docs/`), so that neither page loads anything from another origin.

The bundle is built from `web/` by Vite and committed, so `ordersvc serve` needs no Node. The app
talks only to the public `/v1` API, like any third-party client."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response

from ordersvc.ops.client_text import GuardedRoute

STATIC_DIR = Path(__file__).parent / "static"
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# The page loads only its own scripts and styles and talks only to its own origin. Styles set
# through the CSSOM (progress bars) are not inline `style` attributes, so 'self' is enough.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Asset names carry a content hash: a new build has new names, so they can be cached for good.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


@router.get("/")
async def dashboard_page() -> Response:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return PlainTextResponse("The dashboard is not built: run `npm ci && npm run build` in web/.", status_code=503)
    return FileResponse(index, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/admin")
@router.get("/admin/")
async def console_page() -> Response:
    """The operator's console: the same bundle's second page. It reaches only `/v1/admin`, with an
    operator session (customers' keys and sessions never reach those routes)."""
    page = STATIC_DIR / "admin.html"
    if not page.is_file():
        return PlainTextResponse("The console is not built: run `npm ci && npm run build` in web/.", status_code=503)
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/assets/{name}")
async def dashboard_asset(name: str) -> Response:
    # Only plain file names from the bundle's own folder: no path separators, no dot-files.
    path = STATIC_DIR / "assets" / name
    if not ASSET_NAME.fullmatch(name) or not path.is_file():
        return PlainTextResponse("Not found.", status_code=404)
    return FileResponse(path, headers=ASSET_HEADERS)


# Swagger UI sets inline style attributes and renders the document's images as data: URLs; its
# "Try it out" calls this origin only.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "init.js"}
# Relative URLs: the page works behind a path prefix (root_path) too.
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ordersvc API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def api_reference() -> Response:
    if not (STATIC_DIR / "docs" / "init.js").is_file():
        return PlainTextResponse("The API reference is not built: run `npm ci && npm run build` in web/.", 503)
    return Response(
        DOCS_PAGE,
        media_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, "Content-Security-Policy": DOCS_POLICY},
    )


@router.get("/docs/{name}")
async def api_reference_file(name: str) -> Response:
    path = STATIC_DIR / "docs" / name
    if name not in DOCS_FILES or not path.is_file():
        return PlainTextResponse("Not found.", status_code=404)
    # Not hashed names: revalidated (ETag) rather than cached for good.
    return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
