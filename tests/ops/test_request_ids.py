"""Request ids: 32 hex characters, never repeated, in a forked child either."""

from __future__ import annotations

import os
import re

from ordersvc.ops.middleware import REQUEST_ID, new_request_id


def test_request_ids_are_distinct_and_well_formed() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) and REQUEST_ID.fullmatch(i) for i in ids)


def test_a_forked_child_draws_its_own_random_half() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32
    assert child[:16] != parent[:16]
