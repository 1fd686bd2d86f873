// What the API documents and the dashboard must not restate. The order quantity range is
// `OrderCreate.quantity`'s `minimum` and `maximum` in the service's OpenAPI document
// (web/openapi.json), which vite.config.ts reads at build time: a change of the range in the
// service reaches the form with the next `npm run openapi && npm run build`. (Which orders can be
// canceled is each order's own `cancelable` field.) The lengths of a webhook endpoint's URL and
// description are `WebhookEndpointIn`'s `maxLength`s, read the same way.

declare const __ORDER_QUANTITY__: { readonly minimum: number; readonly maximum: number };

export const MIN_QUANTITY: number = __ORDER_QUANTITY__.minimum;
export const MAX_QUANTITY: number = __ORDER_QUANTITY__.maximum;
/** The API's own words for a quantity out of range (`invalid_quantity`, and the legacy error). */
export const QUANTITY_ERROR = `Invalid quantity. Range is ${MIN_QUANTITY}-${MAX_QUANTITY}.`;

declare const __WEBHOOK_LIMITS__: { readonly url: number; readonly description: number };

export const WEBHOOK_URL_MAX_LENGTH: number = __WEBHOOK_LIMITS__.url;
export const WEBHOOK_DESCRIPTION_MAX_LENGTH: number = __WEBHOOK_LIMITS__.description;

declare const __BATCH_LINES__: number;

/** Lines per `POST /v1/orders/batch`: `OrderBatchCreate.orders`' `maxItems`. */
export const BATCH_LINES: number = __BATCH_LINES__;
