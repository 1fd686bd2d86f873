"""`ordersvc operators ...`: the console's operators, from the server's shell (the way in for
the first admin, and the way back for an operator who lost the authenticator). Every change is
in the audit log, as the local operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import JsonFlag, command_group, emit, in_transaction, json_output, refused, settings_or_fail

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ordersvc.operators.models import Operator

operators_app = command_group("Operators of the console at /admin.")

RoleOption = Annotated[str, typer.Option("--role", help="admin or support.")]


def _record(operator: Operator) -> dict[str, object]:
    return {
        "id": operator.id,
        "email": operator.email,
        "role": operator.role,
        "totp": operator.totp_enabled_at is not None,
        "password": operator.password_hash is not None,
        "state": "disabled" if operator.disabled_at else "active",
    }


def _print_link(email: str, url: str, as_json: bool, operator: Operator) -> None:
    if as_json:
        emit({**_record(operator), "link": url})
        return
    typer.echo(f"operator {email}: set the password within the link's lifetime (shown only once):")
    typer.echo(url)


@operators_app.command("create")
def operators_create(email: str, role: RoleOption, as_json: JsonFlag = False) -> None:
    """Create an operator; prints a one-time link to choose a password (TOTP is set up at the
    first sign-in at /admin)."""
    from ordersvc.audit.service import Actor
    from ordersvc.errors import ServiceError
    from ordersvc.operators import service as operators

    json_output(as_json)
    settings = settings_or_fail()
    try:
        chosen = operators.parse_role(role)
    except ServiceError as exc:
        raise refused(exc) from None

    async def work(session: AsyncSession) -> tuple[Operator, str]:
        link = await operators.create_operator(
            session, Actor.local_operator(), email=email, role=chosen, settings=settings
        )
        return link.operator, link.url

    operator, url = in_transaction(work)
    _print_link(operator.email, url, as_json, operator)


@operators_app.command("list")
def operators_list(as_json: JsonFlag = False) -> None:
    """Every operator: id, email, role, state, whether the password and TOTP are set."""
    from ordersvc.operators import service as operators

    json_output(as_json)
    records = [_record(o) for o in in_transaction(operators.list_operators)]
    if as_json:
        emit(records)
        return
    for r in records:
        flags = ", ".join(f for f in ("password", "totp") if r[f]) or "-"
        typer.echo(f"{r['id']}\t{r['email']}\t{r['role']}\t{r['state']}\t{flags}")


def _change(email: str, what: str, **kwargs: object) -> Operator:
    from ordersvc.audit.service import Actor
    from ordersvc.operators import service as operators

    async def work(session: AsyncSession) -> Operator:
        operator = await operators.get_operator(session, email=email)
        actor = Actor.local_operator()
        if what == "role":
            return await operators.set_role(session, actor, operator, role=operators.parse_role(str(kwargs["role"])))
        return await operators.set_disabled(session, actor, operator, disabled=what == "disable")

    return in_transaction(work)


@operators_app.command("disable")
def operators_disable(email: str) -> None:
    """Disable an operator: their sessions end at once."""
    operator = _change(email, "disable")
    typer.echo(f"operator {operator.email} disabled")


@operators_app.command("enable")
def operators_enable(email: str) -> None:
    """Enable a disabled operator again."""
    operator = _change(email, "enable")
    typer.echo(f"operator {operator.email} enabled")


@operators_app.command("role")
def operators_role(email: str, role: Annotated[str, typer.Argument(help="admin or support.")]) -> None:
    """Change an operator's role."""
    operator = _change(email, "role", role=role)
    typer.echo(f"operator {operator.email} is now {operator.role}")


@operators_app.command("reset")
def operators_reset(email: str, as_json: JsonFlag = False) -> None:
    """A lost password or authenticator: clears both, ends the operator's sessions and prints a
    new one-time link (TOTP is set up again at the next sign-in)."""
    from ordersvc.audit.service import Actor
    from ordersvc.operators import service as operators

    json_output(as_json)
    settings = settings_or_fail()

    async def work(session: AsyncSession) -> tuple[Operator, str]:
        operator = await operators.get_operator(session, email=email)
        link = await operators.reset_operator(session, Actor.local_operator(), operator, settings=settings)
        return link.operator, link.url

    operator, url = in_transaction(work)
    _print_link(operator.email, url, as_json, operator)
