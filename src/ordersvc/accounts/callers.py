"""Who asks for a use case that checks its caller itself, in the same statement as its work (an
order): an API key not checked yet, or an account a browser session has authenticated."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiKeyCaller:
    key: str  # well-formed; whether it is an active key is the use case's first check


@dataclass(frozen=True, slots=True)
class AccountCaller:
    account_id: int


Caller = ApiKeyCaller | AccountCaller


def caller_or_account(caller: Caller | None, account_id: int | None) -> Caller:
    """The caller given, or an account already known (the operator's, or one a browser session
    authenticated): for a read that takes either."""
    if caller is not None:
        return caller
    assert account_id is not None, "a caller or an account_id"
    return AccountCaller(account_id)
