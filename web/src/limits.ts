// What the API documents and the dashboard must not restate. The order quantity range is
// `OrderCreate.quantity`'s `minimum` and `maximum` in the service's OpenAPI document
// (web/openapi.json), which vite.config.ts reads at build time: a change of the range in the
// service reaches the form with the next `npm run openapi && npm run build`. (Which orders can be
// canceled is each order's own `cancelable` field.)

declare const __ORDER_QUANTITY__: { readonly minimum: number; readonly maximum: number };

export const MIN_QUANTITY: number = __ORDER_QUANTITY__.minimum;
export const MAX_QUANTITY: number = __ORDER_QUANTITY__.maximum;
/** The API's own words for a quantity out of range (`invalid_quantity`, and the legacy error). */
export const QUANTITY_ERROR = `Invalid quantity. Range is ${MIN_QUANTITY}-${MAX_QUANTITY}.`;
