"""A real three-member cluster (etcd, Patroni with synchronous replication, HAProxy) on loopback
ports, started once for these tests (`ordersvc.cluster.local`). They run in CI's cluster step
(`ORDERSVC_CLUSTER_TESTS=1`, its own time limit) and are skipped in the main suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordersvc.cluster import local

BASE_PORT = 25400  # away from `ordersvc cluster up`'s default, which a developer may be running


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ORDERSVC_CLUSTER_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="the cluster tests run in CI's cluster step: ORDERSVC_CLUSTER_TESTS=1")
    for item in items:
        if "tests/cluster/" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[local.Layout]:
    try:
        local.binaries()
    except local.ClusterError as exc:
        pytest.skip(str(exc))
    # Not under pytest's own temporary folder, which only its owner may enter: run as root, the
    # members run as the embedded server's system user.
    root = Path(tempfile.mkdtemp(prefix="ordersvc-cluster-"))
    layout = local.Layout(root, BASE_PORT)
    try:
        local.up(layout, timeout=180)
        yield layout
    finally:
        local.down(layout)
        shutil.rmtree(root, ignore_errors=True)
