"""`OperatorDep`: the operator whose console session a `/v1/admin` request carries.

Only the operator cookie counts here: a customer's API key or browser session never reaches an
operator route (and the operator cookie, path-scoped to `/v1/admin`, never reaches the others).
A change also needs `X-CSRF-Token` (the session's token, from sign-in or `GET /v1/admin/me`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie

from ordersvc.accounts.auth import CSRF_HEADER, SAFE_METHODS, CsrfFailed
from ordersvc.accounts.sessions import csrf_token_matches
from ordersvc.audit.service import Actor
from ordersvc.keyring import keyring
from ordersvc.operators import service as operators
from ordersvc.operators.models import Operator
from ordersvc.operators.service import EnrolmentRequired, OperatorAuth, OperatorSessionEnded
from ordersvc.request_db import SessionDep

OPERATOR_COOKIE = "ordersvc_operator"
OPERATOR_COOKIE_PATH = "/v1/admin"
operator_cookie_scheme = APIKeyCookie(
    name=OPERATOR_COOKIE,
    auto_error=False,
    scheme_name="operatorSession",
    description="An operator's console session from `POST /v1/admin/auth/login` (HttpOnly, SameSite=Strict, "
    f"Path={OPERATOR_COOKIE_PATH}). Changes also send `{CSRF_HEADER}` with the session's `csrf_token`.",
)
OperatorCookie = Annotated[str | None, Depends(operator_cookie_scheme)]


async def _auth(request: Request, session: SessionDep, cookie: str | None) -> OperatorAuth:
    if cookie is None:
        raise OperatorSessionEnded()
    settings = request.app.state.settings
    auth = await operators.authenticate_session(session, token=cookie, settings=settings)
    if auth is None:
        raise OperatorSessionEnded()
    if request.method not in SAFE_METHODS and not csrf_token_matches(
        keyring(settings), cookie, request.headers.get(CSRF_HEADER, "")
    ):
        raise CsrfFailed(f"Missing or wrong {CSRF_HEADER}: send the session's csrf_token with every change.")
    request.state.operator_session_id = auth.session_id
    return auth


async def any_operator_session(request: Request, session: SessionDep, cookie: OperatorCookie) -> OperatorAuth:
    """A live session, enrolled or not (for `me`, enrolment and sign-out)."""
    return await _auth(request, session, cookie)


async def signed_in_operator(request: Request, session: SessionDep, cookie: OperatorCookie) -> OperatorAuth:
    """A live session that passed the second factor."""
    auth = await _auth(request, session, cookie)
    if not auth.enrolled:
        raise EnrolmentRequired()
    return auth


@dataclass(frozen=True, slots=True)
class SignedIn:
    operator: Operator
    actor: Actor

    @property
    def owner(self) -> str:
        """Whose export slot a CSV export takes (`csv_export.ExportSlots`)."""
        return f"operator:{self.operator.id}"


async def signed_in(request: Request, auth: Annotated[OperatorAuth, Depends(signed_in_operator)]) -> SignedIn:
    ip = request.client.host if request.client else None
    return SignedIn(auth.operator, operators.actor_of(auth.operator, ip))


AnyOperatorSession = Annotated[OperatorAuth, Depends(any_operator_session)]
OperatorDep = Annotated[SignedIn, Depends(signed_in)]
