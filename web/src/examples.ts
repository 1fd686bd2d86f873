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

/** The legacy endpoint URL carries the key: the seed's clients never send it themselves. */
export function endpointUrl(origin: string, key: string): string {
  return `${origin}/api?key=${encodeURIComponent(key)}`;
}

export function fillExample(template: string, key: string, endpoint: string): string {
  // The key and URL are plain tokens (no quotes or backslashes), safe inside each language's quotes.
  return template.replaceAll("__APIKEY__", key).replaceAll("__ENDPOINT__", endpoint);
}
