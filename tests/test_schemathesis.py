"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis), against a
real server process: no input may produce a 5xx, every response must match the schema declared
for it, and every problem's code must be one its operation lists for its status. Bounded and
derandomized, so a run is repeatable.

The whole document is covered, each operation with the credentials it declares: the fulfilment
routes with a worker token, every other one with a customer's API key. The fuzzer never revokes
the key it runs with (a run that did would test only the 401 answer from there on), and the
last test checks that both credentials still work."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ServerProcess, funded_api_key, run_cli, serve


@pytest.fixture(scope="session")
def fuzz_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A live event stream ends after a second, so that each fuzzed call of it gets a whole answer.
    env = {**os.environ, "ORDERSVC_EVENTS_STREAM_SECONDS": "1"}
    with serve(tmp_path_factory.mktemp("fuzz"), env=env) as process:
        yield process


@pytest.fixture(scope="session")
def fuzz_key(database_url: str) -> str:
    return funded_api_key("fuzz", "1000")


@pytest.fixture(scope="session")
def fuzz_worker_token(database_url: str) -> str:
    worker = json.loads(run_cli("workers", "create", f"fuzz-{uuid.uuid4().hex[:8]}", "--json").stdout)
    token: str = worker["token"]
    return token


@pytest.fixture(scope="session")
def live_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


KEY_PREFIX_LENGTH = 12  # an API key is listed and revoked by its first 12 characters


def credential_for(case: schemathesis.Case, key: str, worker_token: str) -> str:
    """The credential the operation declares: a worker token for `workerAuth`, else the key."""
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    return worker_token if "workerAuth" in schemes else key


def account_state(base_url: str, key: str) -> tuple[object, ...]:
    """Balance, newest payment and newest order of the fuzzing account: what a refusal must not change."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        balance = client.get("/v1/balance").json()["balance"]
        payments = client.get("/v1/payments", params={"limit": 1}).json()["data"]
        orders = client.get("/v1/orders", params={"limit": 1}).json()["data"]
    return balance, [p["id"] for p in payments], [(o["id"], o["status"]) for o in orders]


def assert_same_shape(body: object, example: object, label: str) -> None:
    """The documented example has the fields the real answer has (and the first item of a
    list, the fields of the first real one): an example that leaves out a field the server
    always sends misleads every reader."""
    if isinstance(body, dict) and isinstance(example, dict):
        assert set(body) == set(example), (label, sorted(body), sorted(example))
        for name, value in body.items():
            assert_same_shape(value, example[name], f"{label}.{name}")
    elif isinstance(body, list) and isinstance(example, list) and body and example:
        assert_same_shape(body[0], example[0], f"{label}[0]")


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_rest_api_never_fails_and_keeps_its_schema(
    case: schemathesis.Case, fuzz_key: str, fuzz_worker_token: str, fuzz_server: ServerProcess
) -> None:
    if case.path_parameters and case.path_parameters.get("prefix") == fuzz_key[:KEY_PREFIX_LENGTH]:
        case.path_parameters["prefix"] = "osk_notfuzzed"  # never the run's own key
    before = account_state(fuzz_server.base_url, fuzz_key)
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {credential_for(case, fuzz_key, fuzz_worker_token)}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance],
    )
    content_type = response.headers.get("content-type", [""])[0]  # schemathesis keeps every value of a header
    if 200 <= response.status_code < 300 and content_type.startswith("text/csv"):
        assert response.text.splitlines()[0].count(",") >= 2, case.operation.label  # a CSV export: its header row
    elif 200 <= response.status_code < 300 and content_type.startswith("text/event-stream"):
        assert response.text.startswith("retry: "), case.operation.label  # the stream's first frame
    elif 200 <= response.status_code < 300 and response.content:
        example = case.operation.definition.raw["responses"][str(response.status_code)]["content"]["application/json"]
        assert_same_shape(response.json(), example["example"], case.operation.label)
    if response.status_code >= 400:
        assert account_state(fuzz_server.base_url, fuzz_key) == before, "a refused request changed the account"
        # The problem's code is one its operation lists for that status (or, for a method the
        # path does not take, which schemathesis also sends, `method_not_allowed`).
        documented = case.operation.definition.raw["responses"].get(str(response.status_code))
        declared = documented["x-error-codes"] if documented else ["method_not_allowed"]
        assert response.json()["code"] in declared, (case.operation.label, response.status_code, response.text)


def test_the_fuzzing_credentials_still_work_after_the_run(
    fuzz_key: str, fuzz_worker_token: str, fuzz_server: ServerProcess
) -> None:
    """Runs after the fuzzing above (pytest keeps a module's order): every operation was tried
    with live credentials, not with a key the run had revoked itself."""
    with httpx.Client(base_url=fuzz_server.base_url, timeout=10) as client:
        assert client.get("/v1/balance", headers={"Authorization": f"Bearer {fuzz_key}"}).status_code == 200
        claim = client.post(
            "/v1/fulfilment/claim", headers={"Authorization": f"Bearer {fuzz_worker_token}"}, json={"limit": 1}
        )
        assert claim.status_code == 200, claim.text
