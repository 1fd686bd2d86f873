"""`ordersvc cluster up | down | status`: a local PostgreSQL cluster (etcd, three Patroni members
with synchronous replication, HAProxy to the leader), for tests and demos (`cluster.local`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import EXIT_REFUSED, JsonFlag, command_group, emit, fail, settings_or_fail

if TYPE_CHECKING:
    from ordersvc.cluster.local import Layout

cluster_app = command_group("A local PostgreSQL cluster: etcd, three Patroni members, HAProxy (docs/cluster.md).")

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Where the cluster lives (default: ORDERSVC_DATA_DIR/cluster)."),
]
PortOption = Annotated[
    int,
    typer.Option("--base-port", help="Members on this port and the next two; REST API +10, etcd +20, HAProxy +30."),
]


def _layout(directory: Path | None, base_port: int) -> Layout:
    from ordersvc.cluster.local import Layout

    root = directory if directory is not None else settings_or_fail().data_dir / "cluster"
    return Layout(root.resolve(), base_port)


@cluster_app.command("up")
def cluster_up(
    directory: DirOption = None,
    base_port: PortOption = 15400,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a leader and a synchronous standby.")] = 120.0,
    json_output: JsonFlag = False,
) -> None:
    """Start the cluster (or what of it is not running), wait until a leader has a synchronous
    standby, and print the DATABASE_URL naming every member (the leader is chosen on connecting)
    and HAProxy's. The passwords are generated on the first start and kept in the directory."""
    from ordersvc.cluster.local import ClusterError, up

    layout = _layout(directory, base_port)
    try:
        found = up(layout, timeout=timeout)
    except ClusterError as exc:
        raise fail(str(exc), code=EXIT_REFUSED, error="cluster_not_started") from None
    if json_output:
        emit({"database_url": found.multi_host, "haproxy_url": found.haproxy, "dir": str(layout.root)})
        return
    typer.echo(f"DATABASE_URL={found.multi_host}")
    typer.echo(f"# through HAProxy: {found.haproxy}")
    typer.echo(f"# stop it with: ordersvc cluster down --dir {layout.root} --base-port {layout.base_port}")


@cluster_app.command("down")
def cluster_down(directory: DirOption = None, base_port: PortOption = 15400, json_output: JsonFlag = False) -> None:
    """Stop everything `cluster up` started; the data stays for the next `up`."""
    from ordersvc.cluster.local import down

    stopped = down(_layout(directory, base_port))
    if json_output:
        emit({"stopped": stopped})
        return
    typer.echo("stopped: " + (", ".join(stopped) or "nothing was running"))


@cluster_app.command("status")
def cluster_status(directory: DirOption = None, base_port: PortOption = 15400, json_output: JsonFlag = False) -> None:
    """Each member's role (leader, sync_standby, replica), state and replication lag."""
    from ordersvc.cluster.local import members_status

    members = members_status(_layout(directory, base_port))
    if json_output:
        emit(members)
        return
    for m in members:
        typer.echo(f"{m.get('name')}\t{m.get('role')}\t{m.get('state')}\tlag {m.get('lag', 0)}")
    if not members:
        typer.echo("no member answers")
