// The dashboard's only way to the service: the public /v1 API, typed by the types that
// openapi-typescript generates from the service's own OpenAPI document (schema.d.ts). A change of
// the API that breaks the dashboard breaks `npm run typecheck`.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

const KEY_STORAGE = "ordersvc.apiKey";

/** The API key lives in sessionStorage only: gone when the tab closes, never in a URL. */
export const session = {
  get key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  signIn(key: string): void {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  signOut(): void {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

export const api = createClient<paths>({ baseUrl: "" });

let onUnauthorized: () => void = () => {};

/** Called when the service answers 401 to a signed-in request (the key was revoked). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

api.use({
  onRequest({ request }) {
    const key = session.key;
    if (key) request.headers.set("Authorization", `Bearer ${key}`);
    return request;
  },
  onResponse({ request, response }) {
    // Only a refusal of the key in use signs out (not a late answer to a request sent with
    // another key, e.g. the one typed on the sign-in page).
    const key = session.key;
    if (response.status === 401 && key && request.headers.get("Authorization") === `Bearer ${key}`) onUnauthorized();
    return response;
  },
});

/** What to show for a refused request: the problem's detail, or why there was no answer. */
export function problemText(error: unknown): string {
  if (error && typeof error === "object") {
    const problem = error as Partial<Problem>;
    if (problem.code === "validation_error" && problem.errors && problem.errors.length > 0) {
      return problem.errors.map((e) => `${String(e.loc[e.loc.length - 1] ?? "")}: ${e.msg}`.replace(/^: /, "")).join(" ");
    }
    if (typeof problem.detail === "string") return problem.detail;
  }
  return "The service could not be reached. Please try again.";
}

/** The data of an API call, or the text to show when it was refused or got no answer. */
export async function dataOrProblem<T>(call: () => Promise<{ data?: T; error?: unknown }>): Promise<T | string> {
  try {
    const { data, error } = await call();
    return data ?? problemText(error);
  } catch {
    return problemText(null);
  }
}

/** A fresh idempotency key: the same key is reused when the same order is retried. */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
