// The seed panel's client examples, verbatim but for indentation, with the customer's key and
// endpoint URL put in place of __APIKEY__ and __ENDPOINT__. PHP comes twice: with PHP's own
// streams (no extension needed) and with the curl extension. tests/dashboard checks these
// against ../shared/seed/legacy-api-reference.txt.

const PHP_HEADER = `$apikey = "__APIKEY__";
$endpoint = "__ENDPOINT__";`;

const PHP_NO_CURL = `// Query without CURL library
function query_no_curl($endpoint, $body) {
    $encoded = json_encode($body);
    $options = ['http' => ['header' => "Content-type: application/json",'method' => 'POST','content' => $encoded]];
    $context = stream_context_create($options);
    $result = file_get_contents($endpoint, false, $context);
    if ($result === false) {
        return ["error" => "Connection error"];
    }
    return json_decode($result, true);
}`;

const PHP_CURL = `// Query using CURL library
function query_curl($endpoint, $body) {
    $encoded = json_encode($body);
    $ch = curl_init($endpoint);
    curl_setopt($ch, CURLOPT_POSTFIELDS, $encoded);
    curl_setopt($ch, CURLOPT_HTTPHEADER, array('Content-Type:application/json'));
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    $result = curl_exec($ch);
    if (!$result) return ["error" => "Connection error"];
    curl_close($ch);
    return json_decode($result, true);
}`;

function phpCalls(query: string): string {
  return `// Balance
$body = ["action" => "balance"];
$result = ${query}($endpoint, $body);
// Orders
$body = ["action" => "orders"];
$result = ${query}($endpoint, $body);
// Payments
$body = ["action" => "payments"];
$result = ${query}($endpoint, $body);
// Place order
$body = ["action" => "order", "email" => "billgates@microsoft.com", "quantity" => 10000];
$result = ${query}($endpoint, $body);`;
}

const PYTHON = `import requests
import json

apikey = "__APIKEY__"
endpoint = "__ENDPOINT__"

# Balance
body = {'action': 'balance'}
result = requests.post(endpoint, json=body)
# Orders
body = {'action': 'orders'}
result = requests.post(endpoint, json=body)
# Payments
body = {'action': 'payments'}
result = requests.post(endpoint, json=body)
# Place order
body = {'action': 'order', 'email': 'billgates@microsoft.com', 'quantity': 10000}
result = requests.post(endpoint, json=body)`;

const CURL = `# Balance
curl -X POST __ENDPOINT__ \\
  -H 'Content-Type: application/json' \\
  -d '{"action":"balance"}'
# Orders
curl -X POST __ENDPOINT__ \\
  -H 'Content-Type: application/json' \\
  -d '{"action":"orders"}'
# Payments
curl -X POST __ENDPOINT__ \\
  -H 'Content-Type: application/json' \\
  -d '{"action":"payments"}'
# Place order
curl -X POST __ENDPOINT__ \\
  -H 'Content-Type: application/json' \\
  -d '{"action":"order", "email":"billgates@microsoft.com", "quantity":10000}'`;

export interface Example {
  id: string;
  label: string;
  language: string;
  template: string;
}

export const EXAMPLES: Example[] = [
  {
    id: "php",
    label: "PHP",
    language: "php",
    template: `<?php\n${PHP_HEADER}\n\n${PHP_NO_CURL}\n\n${phpCalls("query_no_curl")}\n`,
  },
  {
    id: "php-curl",
    label: "PHP with curl",
    language: "php",
    template: `<?php\n${PHP_HEADER}\n\n${PHP_CURL}\n\n${phpCalls("query_curl")}\n`,
  },
  { id: "python", label: "Python", language: "python", template: `${PYTHON}\n` },
  { id: "curl", label: "curl", language: "shell", template: `${CURL}\n` },
];

// The typed REST API (/v1), for new integrations: the key in a header, never in a URL. __BASE__
// is the service's origin. The SDK examples are the ones tests/test_generated_sdk.py and
// tests/test_typescript_client.py build and run.
const REST_CURL = `# Balance
curl -s __BASE__/v1/balance -H 'Authorization: Bearer __APIKEY__'
# Place an order (a new Idempotency-Key per order: a retry with the same key never orders twice)
curl -s __BASE__/v1/orders -H 'Authorization: Bearer __APIKEY__' \\
  -H 'Content-Type: application/json' -H "Idempotency-Key: $(uuidgen)" \\
  -d '{"email": "billgates@microsoft.com", "quantity": 10000}'
# Your orders awaiting the recipient's confirmation
curl -s '__BASE__/v1/orders?status=awaiting_confirmation' -H 'Authorization: Bearer __APIKEY__'`;

const REST_PYTHON = `# pip install openapi-python-client
# openapi-python-client generate --url __BASE__/openapi.json  (makes the ordersvc_client package)
import uuid

from ordersvc_client import AuthenticatedClient
from ordersvc_client.api.orders import orders_create
from ordersvc_client.api.payments import balance_get
from ordersvc_client.models import OrderCreate, OrderOut

client = AuthenticatedClient(base_url="__BASE__", token="__APIKEY__")
print(balance_get.sync(client=client).balance)
answer = orders_create.sync_detailed(
    client=client,
    body=OrderCreate(email="billgates@microsoft.com", quantity=10000),
    idempotency_key=str(uuid.uuid4()),
)
if isinstance(answer.parsed, OrderOut):
    print(answer.parsed.id, answer.parsed.status.value)
else:
    print(answer.parsed.code.value, answer.parsed.detail)  # e.g. insufficient_balance`;

const REST_TYPESCRIPT = `// npm install openapi-fetch && npx openapi-typescript __BASE__/openapi.json -o schema.d.ts
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const client = createClient<paths>({ baseUrl: "__BASE__", headers: { Authorization: "Bearer __APIKEY__" } });
const { data, error } = await client.POST("/v1/orders", {
  body: { email: "billgates@microsoft.com", quantity: 10000 },
  params: { header: { "Idempotency-Key": crypto.randomUUID() } },
});
if (data) console.log(data.id, data.status);
else console.log(error.code, error.detail); // error.code is the ErrorCode union`;

export const REST_EXAMPLES: Example[] = [
  { id: "rest-curl", label: "curl", language: "shell", template: `${REST_CURL}\n` },
  { id: "rest-python", label: "Python SDK", language: "python", template: `${REST_PYTHON}\n` },
  { id: "rest-typescript", label: "TypeScript", language: "typescript", template: `${REST_TYPESCRIPT}\n` },
];

const PANEL_CURL = `curl -sS -X POST __BASE__/api/v2 \\
  --data-urlencode "key=__APIKEY__" -d action=add -d service=1 \\
  --data-urlencode "link=billgates@microsoft.com" -d quantity=10000
# {"order":2816571966}`;

const PANEL_PHP = `<?php
// The panel API v2 client class you already use: only its URL and key change.
$api = new Api();
$api->api_url = '__BASE__/api/v2';
$api->api_key = '__APIKEY__';
$order = $api->order(['service' => 1, 'link' => 'billgates@microsoft.com', 'quantity' => 10000]);
$status = $api->status($order->order);  // charge, start_count, status, remains, currency
$balance = $api->balance();             // {"balance": "...", "currency": "USD"}`;

const PANEL_PYTHON = `import requests

API = "__BASE__/api/v2"
order = requests.post(API, data={"key": "__APIKEY__", "action": "add", "service": 1,
                                 "link": "billgates@microsoft.com", "quantity": 10000}).json()
print(requests.post(API, data={"key": "__APIKEY__", "action": "status", "order": order["order"]}).json())`;

export const PANEL_EXAMPLES: Example[] = [
  { id: "panel-curl", label: "curl", language: "shell", template: `${PANEL_CURL}\n` },
  { id: "panel-php", label: "PHP", language: "php", template: `${PANEL_PHP}\n` },
  { id: "panel-python", label: "Python", language: "python", template: `${PANEL_PYTHON}\n` },
];

/** The legacy endpoint URL carries the key: the seed's clients never send it themselves. */
export function endpointUrl(origin: string, key: string): string {
  return `${origin}/api?key=${encodeURIComponent(key)}`;
}

export function fillExample(template: string, key: string, endpoint: string, base = ""): string {
  // The key and URLs are plain tokens (no quotes or backslashes), safe inside each language's quotes.
  return template.replaceAll("__APIKEY__", key).replaceAll("__ENDPOINT__", endpoint).replaceAll("__BASE__", base);
}
