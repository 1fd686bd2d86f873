"""The OpenAPI document passes the linters client developers run on it: Spectral (`spectral:oas`)
and Redocly (`recommended`) report no error, and Redocly finds no example that contradicts its
schema. Both run from the dashboard's pinned npm packages (web/package.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ordersvc.config import Settings
from ordersvc.main import create_app

WEB = Path(__file__).resolve().parent.parent / "web"
BIN = WEB / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None:
        pytest.skip("Node.js with npm is needed for the OpenAPI linters (npm packages; .ci/run has them)")
    if not (BIN / "spectral").exists() or not (BIN / "redocly").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, timeout=600)
    path = tmp_path_factory.mktemp("lint") / "openapi.json"
    path.write_text(json.dumps(create_app(Settings()).openapi()))
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=WEB)


def test_spectral_reports_no_error(document: Path) -> None:
    result = run(str(BIN / "spectral"), "lint", str(document), "--ruleset", str(WEB / ".spectral.yaml"),
                 "--format", "json", "--fail-severity", "error")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout or "[]")
    assert [f for f in findings if f["severity"] == 0] == []  # 0: error
    # The only warning left: no `info.contact` (an operator's deployment adds its own).
    assert {f["code"] for f in findings} <= {"info-contact"}, findings


def test_redocly_recommended_reports_no_error_and_no_invalid_example(document: Path) -> None:
    result = run(str(BIN / "redocly"), "lint", str(document), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout[result.stdout.index("{") :])
    problems = [(p["ruleId"], p["severity"], p["message"]) for p in report["problems"]]
    assert [p for p in problems if p[1] == "error"] == []
    # The only warning left: no `info.license` (ordersvc is not published under one).
    assert {p[0] for p in problems} <= {"info-license"}, problems
