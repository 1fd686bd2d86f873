"""`deploy/nginx.conf` in front of a live `serve`: the proxy's logs hold no API key and no
consent token, however a client sends them. nginx's default access log records the whole
request line (`?key=osk_...`, `/consent/confirm/<token>`), and its error log quotes it.

Runs the Debian package's nginx (`apt-get install nginx-light`); skipped without it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, free_port, serve

PROJECT_ROOT = Path(__file__).resolve().parents[2]

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")


def _main_config(prefix: Path, site: Path) -> str:
    """nginx's own defaults around the site, as the Debian and Docker images have them: an error
    log at `notice` and a `combined` access log, which the site must override."""
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\nmaster_process off;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} notice;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log {prefix / 'access.log'} combined;\n  {temp}\n  include {site};\n}}\n"
    )


def _site_config(prefix: Path, listen: int, upstream: str) -> str:
    """The repository's file, on loopback: the replica is the test's server, and the log files
    that the image sends to stdout and stderr are files in the prefix."""
    text = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text()
    replaced = {
        "resolver 127.0.0.11 valid=10s ipv6=off;": "",
        "listen 8000;": f"listen 127.0.0.1:{listen};",
        "http://app:8000": upstream,
        "/var/log/nginx/": f"{prefix}/",
    }
    for old, new in replaced.items():
        assert old in text or old == "/var/log/nginx/", old
        text = text.replace(old, new)
    return text


@pytest.fixture
def proxy(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Path, ServerProcess]]:
    """nginx with deploy/nginx.conf in front of `serve`: its base URL, its prefix, the server."""
    env = {**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false"}
    with serve(tmp_path, env=env) as server:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        port = free_port()
        site = prefix / "site.conf"
        site.write_text(_site_config(prefix, port, server.base_url))
        (prefix / "nginx.conf").write_text(_main_config(prefix, site))
        assert NGINX is not None
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", prefix, server
        finally:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()


def _key() -> str:
    return "osk_" + secrets.token_urlsafe(24)


def _token() -> str:
    return secrets.token_urlsafe(32)


class TestTheProxyLogsNoSecret:
    def test_keys_and_consent_tokens_stay_out_of_the_access_and_error_logs(
        self, proxy: tuple[str, Path, ServerProcess]
    ) -> None:
        base_url, prefix, server = proxy
        query_key, path_key, bearer_key, big_key = _key(), _key(), _key(), _key()
        confirm, optout, decline, encoded, worker = _token(), _token(), _token(), _token(), "owk_" + _token()
        with httpx.Client(base_url=base_url, timeout=10) as client:
            sent = [
                client.post(f"/api?key={query_key}", json={"action": "balance"}),
                client.get(f"/api?action=balance&token={confirm}"),
                client.get(f"/consent/confirm/{confirm}"),
                # The consent page's form posts back to itself: its Referer is the link.
                client.post(
                    f"/consent/optout/{optout}",
                    data={"x": "1"},
                    headers={"Referer": f"{base_url}/consent/optout/{optout}"},
                ),
                client.get(f"{base_url}//consent/decline/{decline}"),  # absolute: the path is //consent/...
                client.get(f"/%63onsent/confirm/{encoded}"),
                client.get(f"/v1/orders/{path_key}/x", headers={"Authorization": f"Bearer {bearer_key}"}),
                client.get(f"/v1/fulfilment/{worker}"),
                # Refused by nginx itself (client_max_body_size), which logs it as an error.
                client.post(f"/api?key={big_key}", content=b"x" * 2_000_000),
            ]
        assert sent[0].content == b'{"error":"Invalid key."}'  # it did reach the service
        assert sent[-1].status_code == 413
        time.sleep(0.5)
        access = (prefix / "access.log").read_text()
        errors = (prefix / "error.log").read_text()
        for secret in (query_key, path_key, bearer_key, big_key, confirm, optout, decline, encoded, worker):
            for part in (secret, secret[4:20]):
                assert part not in access
                assert part not in errors
        assert "?" not in access
        lines = [json.loads(line) for line in access.splitlines()]
        assert len(lines) == len(sent)
        paths = [line["path"] for line in lines]
        assert paths[:2] == ["/api", "/api"]
        assert paths[2:6] == [
            "/consent/confirm/[REDACTED]",
            "/consent/optout/[REDACTED]",
            "/consent/decline/[REDACTED]",
            "/consent/confirm/[REDACTED]",
        ]
        assert paths[6:8] == ["/v1/orders/[REDACTED]", "/v1/fulfilment/[REDACTED]"]
        # What an operator needs is still there: status, the replica's request id and status.
        assert [line["status"] for line in lines][-1] == 413
        assert lines[0]["request_id"] == sent[0].headers["X-Request-ID"]
        assert lines[0]["upstream_status"] == "200"
        assert "Traceback" not in server.log()
