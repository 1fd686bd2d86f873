"""A command of ours run beside `serve` as a process of its own, at a lower CPU priority:
`serve` starts it, starts it again if it dies, and stops it when `serve` stops. The webhook
sender runs so (`ordersvc webhooks --beside-serve`): requests come first, and under a load that
takes every core, deliveries wait and catch up afterwards instead of slowing every request."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

logger = logging.getLogger(__name__)

NICENESS = 10  # a tenth of a core's share against a busy server process (Linux CFS weights)
RESTART_DELAY_SECONDS = 2.0
STOP_SECONDS = 20.0
_PR_SET_PDEATHSIG = 1


def lower_priority_and_follow_parent() -> None:
    """In the child: a lower CPU priority, and SIGTERM when the `serve` that started it dies (so a
    killed `serve` leaves nothing behind; Linux)."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the line above
        sys.exit(0)


class BackgroundCommand:
    """`ordersvc <args>` as a child process, kept running until `stop`."""

    def __init__(self, args: Sequence[str]) -> None:
        self.command = [sys.executable, "-c", "from ordersvc.cli import app; app()", *args]
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="ordersvc-background", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self.command)  # noqa: S603 - our own command, no input

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.wait(RESTART_DELAY_SECONDS):
                return
            logger.warning("background command %s exited with %s; starting it again", self.command[3:], code)
            self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
