"""The operator's CLI, timed as a user runs it: each command as a whole process, from start to
exit, the median of several runs (bytecode cached: one run first, not counted).

    uv run python bench/cli.py            # about a minute
    uv run python bench/cli.py --runs 11

Commands: `ordersvc --help`, `ordersvc --version`, and `ordersvc accounts list` on the embedded
database, both when the command starts the database itself (nothing else is running: it starts
the server and stops it at exit) and when a running `serve` holds it. Beside them, as this
machine's yardstick of the moment, `python -c "import typer"` (the least any typer CLI loads).
Targets (issue 16): `--help` under 0.3 s, `accounts list` under 0.8 s."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
ORDERSVC = str(BIN / "ordersvc")
TARGETS = {"--help": 0.3, "accounts list (a running serve holds the database)": 0.8}


def timed(command: list[str], env: dict[str, str], runs: int) -> float | str:
    """The median wall time of `runs` runs of `command`, after one run not counted; or how it
    failed (an older commit's CLI may not have the command)."""
    times = []
    for n in range(runs + 1):
        began = time.perf_counter()
        done = subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if done.returncode != 0:
            return f"fails (exit {done.returncode})"
        if n:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="ordersvc-cli-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"ORDERSVC_DATA_DIR": str(data), "ORDERSVC_MAILER_IN_SERVE": "false"})
    results: dict[str, float | str] = {}
    results["python -c 'import typer' (yardstick)"] = timed([str(BIN / "python"), "-c", "import typer"], env, args.runs)
    results["--help"] = timed([ORDERSVC, "--help"], env, args.runs)
    results["--version"] = timed([ORDERSVC, "--version"], env, args.runs)
    results["accounts list (the command starts the database)"] = timed([ORDERSVC, "accounts", "list"], env, args.runs)
    port = str(18900 + os.getpid() % 100)
    server = subprocess.Popen(
        [ORDERSVC, "serve", "--port", port], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("serve did not start") from None
                time.sleep(0.3)
        key = "accounts list (a running serve holds the database)"
        results[key] = timed([ORDERSVC, "accounts", "list"], env, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    width = max(map(len, results))
    for name, seconds in results.items():
        if isinstance(seconds, str):
            print(f"{name:<{width}}  {seconds}")
            continue
        target = TARGETS.get(name)
        verdict = "" if target is None else ("  pass" if seconds < target else f"  FAIL: >= {target} s")
        print(f"{name:<{width}}  {seconds:6.3f} s{verdict}")


if __name__ == "__main__":
    main()
