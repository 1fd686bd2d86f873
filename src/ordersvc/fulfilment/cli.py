"""`ordersvc workers ...` and `ordersvc worker --handler module:function`."""

from __future__ import annotations

from typing import Annotated

import typer

from ordersvc.cli_support import JsonFlag, command_group, emit, fail, in_transaction, json_output

workers_app = command_group("Fulfilment worker tokens.")


@workers_app.command("create")
def workers_create(name: str, as_json: JsonFlag = False) -> None:
    """A token for worker NAME (shown only here)."""
    from ordersvc.fulfilment import service as fulfilment

    json_output(as_json)
    worker, token = in_transaction(lambda session: fulfilment.create_worker(session, name=name))
    if as_json:
        emit({"name": worker.name, "token": token})
    else:
        typer.echo(f"worker {worker.name} created\ntoken (shown only once): {token}")


@workers_app.command("list")
def workers_list(as_json: JsonFlag = False) -> None:
    """Every worker token: name, prefix, state."""
    from ordersvc.fulfilment import service as fulfilment

    json_output(as_json)
    workers = in_transaction(fulfilment.list_workers)
    if as_json:
        emit([{"name": w.name, "prefix": w.prefix, "state": "revoked" if w.revoked_at else "active"} for w in workers])
        return
    for w in workers:
        typer.echo(f"{w.name}\t{w.prefix}...\t{'revoked' if w.revoked_at else 'active'}")


@workers_app.command("revoke")
def workers_revoke(name: str) -> None:
    """Revoke worker NAME's token: its leases lapse and its orders can be claimed again."""
    from ordersvc.fulfilment import service as fulfilment

    in_transaction(lambda session: fulfilment.revoke_worker(session, name=name))
    typer.echo(f"worker {name} revoked")


def worker_command(
    handler: Annotated[str, typer.Option(help="package.module:function, an async function taking a Job.")],
    url: Annotated[str, typer.Option(help="The service's base URL.")] = "http://127.0.0.1:8000",
    token: Annotated[str, typer.Option(envvar="ORDERSVC_WORKER_TOKEN", help="Worker token.")] = "",
    batch: Annotated[int, typer.Option(min=1, max=50)] = 10,
    lease: Annotated[int, typer.Option(min=10, max=3600, help="Lease seconds.")] = 300,
    once: Annotated[bool, typer.Option("--once", help="Exit when the queue is empty.")] = False,
) -> None:
    """Run the reference worker: claim, heartbeat, report, complete or fail; the handler
    delivers."""
    import asyncio

    from ordersvc.cli_support import stop_on_signals
    from ordersvc.fulfilment import runtime

    if not token:
        raise fail("a worker token is needed: --token or ORDERSVC_WORKER_TOKEN")
    try:
        work = runtime.load_handler(handler)
    except (ValueError, ImportError, AttributeError) as exc:
        raise fail(str(exc)) from None

    async def main() -> dict[str, str]:
        return await runtime.run(
            base_url=url, token=token, handler=work, batch=batch, lease_seconds=lease, once=once, stop=stop_on_signals()
        )

    for order_id, outcome in asyncio.run(main()).items():
        typer.echo(f"{order_id}\t{outcome}")
