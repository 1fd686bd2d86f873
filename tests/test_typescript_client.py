"""A TypeScript client generated from the live OpenAPI document (openapi-typescript types and
openapi-fetch, the dashboard's own tools from web/) compiles with `tsc --strict` and runs under
Node against a real server process: orders placed, replayed, listed, fetched, and a refusal
switched over by its `ErrorCode`."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, funded_api_key, serve

WEB = Path(__file__).resolve().parent.parent / "web"

CLIENT = """\
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ErrorCode = components["schemas"]["ErrorCode"];
type Order = components["schemas"]["OrderOut"];
declare const process: { argv: string[] };

function advice(code: ErrorCode): string {
  switch (code) {
    case "insufficient_balance":
      return "add funds first";
    case "invalid_email":
      return "check the address";
    default:
      return code;
  }
}

const [baseUrl, key] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

// Never called: what the types refuse (the build fails if they accept it).
export async function refusedByTheTypes(): Promise<void> {
  // @ts-expect-error REST statuses are snake_case
  await client.GET("/v1/orders", { params: { query: { status: "in progress" } } });
  // @ts-expect-error a quantity is a number
  await client.POST("/v1/orders", { body: { email: "a@example.com", quantity: "1000" } });
}

const body = { email: "ts@example.com", quantity: 1500 };
const header = { "Idempotency-Key": "ts-1" };
const placed = await client.POST("/v1/orders", { body, params: { header } });
if (placed.data === undefined) throw new Error(JSON.stringify(placed.error));
const order: Order = placed.data;
const replayed = await client.POST("/v1/orders", { body, params: { header } });
const refused = await client.POST("/v1/orders", { body: { email: "nope", quantity: 1000 } });
const tooBig = await client.POST("/v1/orders", { body: { email: "ts@example.com", quantity: 50000 } });
const listed = await client.GET("/v1/orders", { params: { query: { status: "awaiting_confirmation", limit: 5 } } });
const fetched = await client.GET("/v1/orders/{order_id}", { params: { path: { order_id: order.id } } });
const balance = await client.GET("/v1/balance");

console.log(JSON.stringify({
  id: order.id,
  price: order.price,
  replayed: replayed.data?.id,
  replayedHeader: replayed.response.headers.get("Idempotent-Replayed"),
  refused: refused.error ? [refused.response.status, refused.error.code, advice(refused.error.code)] : null,
  tooBig: tooBig.error ? [tooBig.response.status, advice(tooBig.error.code), tooBig.error.request_id.length] : null,
  listed: listed.data?.data.map((o) => o.id),
  status: fetched.data?.status,
  balance: balance.data?.balance,
}));
"""

TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2022", "DOM"],
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "strict": True,
        "noUncheckedIndexedAccess": True,
        "noUnusedLocals": True,
        "skipLibCheck": False,
        "types": [],
        "outDir": "out",
    },
    "files": ["client.ts"],
}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The dashboard's pinned npm packages (`npm ci` in web/, as .ci/run does)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("Node.js with npm is needed to build the TypeScript client (.ci/run has them)")
    modules = WEB / "node_modules"
    if not (modules / ".bin" / "tsc").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, timeout=600)
    return modules


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("ts")) as process:
        yield process


@pytest.fixture(scope="module")
def api_key(database_url: str) -> str:
    return funded_api_key("ts", "20")


def test_generated_typescript_client_compiles_strictly_and_runs(
    node_modules: Path, server: ServerProcess, api_key: str, tmp_path: Path
) -> None:
    (tmp_path / "openapi.json").write_text(httpx.get(f"{server.base_url}/openapi.json", timeout=10).text)
    (tmp_path / "node_modules").symlink_to(node_modules)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "client.ts").write_text(CLIENT)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    bin_dir = node_modules / ".bin"

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done.stdout

    run(str(bin_dir / "openapi-typescript"), "openapi.json", "--output", "schema.d.ts")
    run(str(bin_dir / "tsc"), "-p", "tsconfig.json")
    result = json.loads(run("node", "out/client.js", server.base_url, api_key))

    assert result["price"] == "1.50"
    assert (result["replayed"], result["replayedHeader"]) == (result["id"], "true")
    assert result["refused"] == [422, "invalid_email", "check the address"]
    assert result["tooBig"] == [402, "add funds first", 32]
    assert result["listed"] == [result["id"]]
    assert result["status"] == "awaiting_confirmation"
    assert result["balance"] == "18.50"
