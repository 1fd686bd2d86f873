"""`GET /problems/{code}`: where a problem document's `type` leads. A browser gets a page that
explains the code; any other client gets the same as JSON. `GET /problems` lists every code."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ordersvc.errors import NotFound
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.problem_types import PROBLEM_TYPES, ProblemType, problem_type_path

router = APIRouter(prefix="/problems", include_in_schema=False, route_class=GuardedRoute)

_CACHE = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
# The pages are static text and one inline style attribute.
_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class UnknownProblemType(NotFound):
    message = "No problem type has that code: GET /problems lists them."


def _wants_html(request: Request) -> bool:
    """A browser asks for text/html before JSON; a client that names neither gets JSON."""
    accept = request.headers.get("accept", "").lower()
    html, json = accept.find("text/html"), accept.find("json")
    return html >= 0 and (json < 0 or html < json)


def _described(code: str, problem_type: ProblemType, root_path: str) -> dict[str, Any]:
    return {
        "type": problem_type_path(code, root_path),
        "code": code,
        "title": problem_type.title,
        "status": problem_type.status,
        "description": problem_type.about,
    }


def _html(text: str) -> str:
    """Escaped, with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _page(title: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5">'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, headers={**_CACHE, "Vary": "Accept", "Content-Security-Policy": _PAGE_POLICY})


@router.get("")
async def problem_types_index(request: Request) -> Response:
    root_path = request.scope.get("root_path", "")
    if not _wants_html(request):
        data = [_described(code, t, root_path) for code, t in sorted(PROBLEM_TYPES.items())]
        return JSONResponse({"data": data}, headers={**_CACHE, "Vary": "Accept"})
    items = "".join(
        f'<li><a href="{escape(problem_type_path(code, root_path))}"><code>{escape(code)}</code></a> '
        f"({t.status}): {escape(t.title)}</li>"
        for code, t in sorted(PROBLEM_TYPES.items())
    )
    return _page(
        "Problem types",
        "<h1>Problem types</h1><p>Every <code>code</code> an ordersvc REST error can carry "
        "(RFC 9457 problem details, <code>application/problem+json</code>).</p>"
        f"<ul>{items}</ul>",
    )


@router.get("/{code}")
async def problem_type_page(code: str, request: Request) -> Response:
    problem_type = PROBLEM_TYPES.get(code)
    if problem_type is None:
        raise UnknownProblemType()
    root_path = request.scope.get("root_path", "")
    if not _wants_html(request):
        return JSONResponse(_described(code, problem_type, root_path), headers={**_CACHE, "Vary": "Accept"})
    return _page(
        f"{problem_type.title} ({code})",
        f'<p><a href="{escape(root_path)}/problems">Problem types</a></p>'
        f"<h1>{escape(problem_type.title)}</h1>"
        f"<p><code>code</code>: <code>{escape(code)}</code>, HTTP {problem_type.status}</p>"
        f"<p>{_html(problem_type.about)}</p>",
    )
