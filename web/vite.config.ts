import { copyFileSync, mkdirSync } from "node:fs";
import { defineConfig, type Plugin } from "vite";
import openapi from "./openapi.json" with { type: "json" };

// The order quantity range, as the service's OpenAPI document states it (`src/limits.ts`).
const quantity: { minimum?: number; maximum?: number } = openapi.components.schemas.OrderCreate.properties.quantity;
if (!Number.isInteger(quantity.minimum) || !Number.isInteger(quantity.maximum)) {
  throw new Error("openapi.json: OrderCreate.quantity has no integer minimum and maximum");
}

// Text lengths of a webhook endpoint, as `WebhookEndpointIn` states them.
const endpoint = openapi.components.schemas.WebhookEndpointIn.properties;
const webhookLimits = { url: endpoint.url.maxLength, description: endpoint.description.maxLength };
if (!Number.isInteger(webhookLimits.url) || !Number.isInteger(webhookLimits.description)) {
  throw new Error("openapi.json: WebhookEndpointIn.url and .description have no integer maxLength");
}

// Lines per mass order request, as `OrderBatchCreate.orders` states it.
const batchLines: number | undefined = openapi.components.schemas.OrderBatchCreate.properties.orders.maxItems;
if (!Number.isInteger(batchLines)) {
  throw new Error("openapi.json: OrderBatchCreate.orders has no integer maxItems");
}

// The API reference (`/docs`): Swagger UI's own files from npm (swagger-ui-dist) and our start
// script, copied next to the bundle so that the service serves them itself, without a CDN.
const OUT_DIR = "../src/ordersvc/dashboard/static";
function apiReference(): Plugin {
  return {
    name: "ordersvc-api-reference",
    closeBundle() {
      const docs = `${OUT_DIR}/docs`;
      mkdirSync(docs, { recursive: true });
      for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
        copyFileSync(`node_modules/swagger-ui-dist/${file}`, `${docs}/${file}`);
      }
      copyFileSync("docs/init.js", `${docs}/init.js`);
    },
  };
}

// The bundle is built into the Python package, which serves it at `/` (index.html) and
// `/assets/` (hashed files), so `ordersvc serve` needs no Node at run time.
export default defineConfig({
  base: "/",
  plugins: [apiReference()],
  define: {
    __ORDER_QUANTITY__: JSON.stringify({ minimum: quantity.minimum, maximum: quantity.maximum }),
    __WEBHOOK_LIMITS__: JSON.stringify(webhookLimits),
    __BATCH_LINES__: JSON.stringify(batchLines),
  },
  build: {
    outDir: OUT_DIR,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // One small script and one stylesheet: nothing is inlined as a data: URL, so the page's
    // Content-Security-Policy can stay at 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    // Two pages: the customer dashboard (`/`) and the operator's console (`/admin`).
    rollupOptions: { input: { index: "index.html", admin: "admin.html" } },
  },
  server: {
    // `npm run dev` proxies the API to a local `ordersvc serve`.
    proxy: { "/v1": "http://127.0.0.1:8000", "/api": "http://127.0.0.1:8000", "/docs": "http://127.0.0.1:8000" },
  },
});
