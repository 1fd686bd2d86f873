"""The recipient's pages behind the links of a consent message.

GET shows what the link is about and a button; only POST acts, so that link scanners in mail
systems, which follow links with GET, never confirm or decline by accident. The opt-out URL
also takes RFC 8058 one-click POSTs (`List-Unsubscribe=One-Click`) from mail clients."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ordersvc.consent import service as consent
from ordersvc.consent.tokens import ConsentAction, InvalidToken
from ordersvc.errors import ServiceError
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.request_db import SessionDep

router = APIRouter(prefix="/consent", include_in_schema=False, route_class=GuardedRoute)

_QUESTIONS = {
    ConsentAction.CONFIRM: (
        "Confirm",
        "Do you agree to receive the messages {requester} ordered for {email}?",
        "Yes, I agree",
    ),
    ConsentAction.DECLINE: ("Decline", "Refuse the messages {requester} ordered for {email}?", "No, thank you"),
    ConsentAction.OPT_OUT: (
        "Never contact me",
        "Stop every message to {email}, from {requester} and from anyone else using this service, for good?",
        "Never contact me again",
    ),
}
_DONE = {
    ConsentAction.CONFIRM: "Thank you: {email} will receive the messages {requester} ordered.",
    ConsentAction.DECLINE: "Done: {email} will not receive the messages {requester} ordered.",
    ConsentAction.OPT_OUT: "Done: {email} will not be contacted again through this service.",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em">'
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    # Never cached, never framed: each answer is a fresh decision.
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(html, status_code=status, headers=headers)


def _error(exc: ServiceError) -> HTMLResponse:
    return _page("Link not usable", f"<p>{escape(exc.message)}</p>", status=exc.status)


@router.get("/{action}/{token}")
async def consent_page(action: ConsentAction, token: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        about = await consent.describe(session, token=token, settings=request.app.state.settings)
    except ServiceError as exc:
        return _error(exc)
    if about["action"] is not action:
        return _error(InvalidToken())
    title, question, button = _QUESTIONS[action]
    text = question.format(requester=escape(about["requester"]), email=escape(about["email"]))
    form = f'<form method="post"><button type="submit" style="font-size:1.2em">{escape(button)}</button></form>'
    return _page(title, f"<p>{text}</p>{form}")


@router.post("/{action}/{token}")
async def consent_decide(action: ConsentAction, token: str, request: Request, session: SessionDep) -> HTMLResponse:
    settings = request.app.state.settings  # the app's own (tests run apps with secrets of their own)
    try:
        about = await consent.describe(session, token=token, settings=settings)
        if about["action"] is not action:
            raise InvalidToken()
        decision = await consent.decide(session, token=token, settings=settings)
    except ServiceError as exc:
        return _error(exc)
    text = _DONE[decision.action].format(requester=escape(decision.requester), email=escape(decision.email))
    return _page(_QUESTIONS[decision.action][0], f"<p>{text}</p>")
