"""A TypeScript receiver verifies a real delivery with the `standardwebhooks` npm package, as
docs/webhooks.md shows: compiled with the dashboard's `tsc`, run with Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import MakeCustomer
from tests.support import unique_email
from tests.webhooks.conftest import Deliver, Receiver, create_endpoint

WEB = Path(__file__).resolve().parents[2] / "web"
MODULES = WEB / "node_modules"

VERIFY_TS = """
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const [secret, file] = process.argv.slice(2);
const { body, headers } = JSON.parse(readFileSync(file, "utf8")) as { body: string; headers: Record<string, string> };
const webhook = new Webhook(secret); // "whsec_...", as the API shows it
try {
  const event = webhook.verify(body, headers) as { id: string; type: string; data: { id: string } };
  console.log(JSON.stringify({ ok: true, id: event.id, type: event.type, order: event.data.id }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
}
"""


@pytest.fixture
def compiled(tmp_path: Path) -> Path:
    if shutil.which("node") is None or not (MODULES / "standardwebhooks").is_dir():
        pytest.skip("Node.js and web/node_modules are needed (`npm ci` in web/, as .ci/run does)")
    (tmp_path / "verify.ts").write_text(VERIFY_TS)
    (tmp_path / "node_modules").symlink_to(MODULES)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    subprocess.run(
        [str(MODULES / ".bin" / "tsc"), "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
         "--target", "es2022", "--types", "node", "--outDir", "out", "verify.ts"],
        cwd=tmp_path, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return tmp_path


def verify(compiled: Path, secret: str, body: str, headers: dict[str, str]) -> dict[str, object]:
    (compiled / "delivery.json").write_text(json.dumps({"body": body, "headers": headers}))
    result = subprocess.run(
        ["node", "out/verify.js", secret, "delivery.json"], cwd=compiled, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


async def test_a_typescript_receiver_verifies_a_delivery(
    compiled: Path, client: httpx.AsyncClient, make_customer: MakeCustomer, receiver: Receiver, deliver: Deliver
) -> None:
    customer = await make_customer(balance="5")
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
    response = await client.post(
        "/v1/orders", json={"email": unique_email("ts"), "quantity": 500}, headers={"X-API-Key": customer.api_key}
    )
    placed = response.json()
    await deliver(lambda: len(receiver.received) >= 1)
    (delivery,) = receiver.received
    body = delivery.body.decode()
    verified = verify(compiled, endpoint["secret"], body, delivery.headers)
    assert verified == {
        "ok": True,
        "id": delivery.headers["webhook-id"],
        "type": "order.created",
        "order": placed["id"],
    }
    tampered = verify(compiled, endpoint["secret"], body.replace('"quantity":500', '"quantity":5000'), delivery.headers)
    assert tampered["ok"] is False
