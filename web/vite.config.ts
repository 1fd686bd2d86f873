import { defineConfig } from "vite";
import openapi from "./openapi.json" with { type: "json" };

// The order quantity range, as the service's OpenAPI document states it (`src/limits.ts`).
const quantity: { minimum?: number; maximum?: number } = openapi.components.schemas.OrderCreate.properties.quantity;
if (!Number.isInteger(quantity.minimum) || !Number.isInteger(quantity.maximum)) {
  throw new Error("openapi.json: OrderCreate.quantity has no integer minimum and maximum");
}

// The bundle is built into the Python package, which serves it at `/` (index.html) and
// `/assets/` (hashed files), so `ordersvc serve` needs no Node at run time.
export default defineConfig({
  base: "/",
  define: { __ORDER_QUANTITY__: JSON.stringify({ minimum: quantity.minimum, maximum: quantity.maximum }) },
  build: {
    outDir: "../src/ordersvc/dashboard/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // One small script and one stylesheet: nothing is inlined as a data: URL, so the page's
    // Content-Security-Policy can stay at 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` proxies the API to a local `ordersvc serve`.
    proxy: { "/v1": "http://127.0.0.1:8000", "/api": "http://127.0.0.1:8000", "/docs": "http://127.0.0.1:8000" },
  },
});
