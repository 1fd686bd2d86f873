"""The README's five-minute tour runs as written, command by command, against a live server, and
each command's output matches the `# ...` line the README shows under it (ids, times and `...`
stand for any value). And every page under docs/ is reachable from the README, and every
relative link in the README and the docs resolves."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ORDERSVC, ServerProcess, serve, unique_email

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR_URL = "http://127.0.0.1:8000"
TOUR_EMAIL = "alice@example.com"
TOUR_OPERATOR = "ops@example.com"


def tour_commands() -> list[tuple[str, str | None]]:
    """The tour's second shell block (the first starts the server): each command (continuation
    lines joined) with the output line shown under it, if any."""
    section = README.read_text().split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks[0].strip() == "uv run ordersvc serve"
    commands: list[tuple[str, str | None]] = []
    pending = ""
    for line in blocks[1].splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith("# {") or line.startswith("# ["):
            command, _ = commands[-1]
            commands[-1] = (command, line[2:])
            continue
        elif line.startswith("#") or not line.strip():
            continue
        else:
            pending = line
        if not pending.endswith("\\"):
            commands.append((pending, None))
            pending = ""
    return commands


def as_pattern(shown: str) -> re.Pattern[str]:
    """The README's output line as a pattern: its order id, times and `...` stand for any."""
    pattern = re.escape(shown)
    pattern = pattern.replace("A7E17A3E", "[0-9A-F]{8}")
    pattern = pattern.replace(re.escape("2026-11-24 10:00:00"), r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    pattern = pattern.replace(re.escape("..."), ".*?")
    return re.compile(pattern)


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("readme")) as process:
        yield process


def test_the_tour_runs_as_written(server: ServerProcess, tmp_path: Path) -> None:
    commands = tour_commands()
    assert len(commands) >= 10
    email = unique_email("alice")
    script = ["set -euo pipefail"]
    for index, (command, _) in enumerate(commands):
        # The test's server and CLI (same database), and an address no other test uses.
        command = command.replace(TOUR_URL, server.base_url).replace(TOUR_EMAIL, email)
        command = command.replace(TOUR_OPERATOR, unique_email("ops"))
        command = command.replace("uv run ordersvc", ORDERSVC)
        script += [f"echo '@@{index}'", command, "echo"]
    path = tmp_path / "tour.sh"
    path.write_text("\n".join(script) + "\n")
    done = subprocess.run(
        ["bash", str(path)], capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = re.split(r"^@@\d+\n", done.stdout, flags=re.M)[1:]
    assert len(outputs) == len(commands)
    checked = 0
    for (command, shown), output in zip(commands, outputs, strict=True):
        if shown is None:
            continue
        assert as_pattern(shown).fullmatch(output.strip()), f"{command}\nshown: {shown}\ngot:   {output.strip()}"
        checked += 1
    assert checked >= 7


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", README.read_text()))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"])
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"^(https?:|mailto:|#)", target):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.name}: {target}"


def test_the_readme_fits_a_first_read() -> None:
    assert len(README.read_text().splitlines()) <= 160
