// The dashboard's only way to the service: the public /v1 API, typed by the types that
// openapi-typescript generates from the service's own OpenAPI document (schema.d.ts). A change of
// the API that breaks the dashboard breaks `npm run typecheck`.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

const KEY_STORAGE = "ordersvc.apiKey";
const CSRF_COOKIE = "ordersvc_csrf";

/** The CSRF token of the browser session, from its readable cookie (the session cookie itself
 * is HttpOnly: script never sees it). */
export function csrfToken(): string | null {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join("="));
  }
  return null;
}

/** Drops the readable cookie (after sign-out, or when the session it belonged to has ended). */
export function forgetCsrf(): void {
  document.cookie = `${CSRF_COOKIE}=; Max-Age=0; path=/; SameSite=Lax`;
}

/**
 * Two ways in. An API key (scripts' way) lives in sessionStorage only: gone when the tab closes,
 * never in a URL. A password sign-in gets a browser session: an HttpOnly cookie the browser sends
 * by itself, plus a CSRF token that every change echoes in X-CSRF-Token.
 */
export const session = {
  get key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  get cookie(): boolean {
    return csrfToken() !== null;
  },
  signIn(key: string): void {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  async signOut(): Promise<void> {
    const hadKey = sessionStorage.getItem(KEY_STORAGE) !== null;
    sessionStorage.removeItem(KEY_STORAGE);
    if (!hadKey && csrfToken() !== null) {
      try {
        await api.POST("/v1/auth/logout");
      } catch {
        // Signed out here either way: the session ends when the service answers or expires.
      }
    }
    forgetCsrf();
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
    if (key) {
      if (!request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${key}`);
    } else if (request.method !== "GET" && request.method !== "HEAD") {
      const csrf = csrfToken();
      if (csrf) request.headers.set("X-CSRF-Token", csrf);
    }
    return request;
  },
  onResponse({ request, response }) {
    // Only a refusal of the credential in use signs out (not a late answer to a request sent
    // with another key, e.g. the one typed on the sign-in page, nor a wrong password).
    const key = session.key;
    const auth = request.headers.get("Authorization");
    const signedIn = key ? auth === `Bearer ${key}` : auth === null && session.cookie;
    const signInRoute = new URL(request.url).pathname.startsWith("/v1/auth/");
    if (response.status === 401 && signedIn && !signInRoute) onUnauthorized();
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

/** A CSV export of the account (`/v1/orders/export`, ...), saved as a file: fetched with the key
 * or the session cookie, like every other call, then handed to the browser as a download. */
export function exportButton(path: "/v1/orders/export" | "/v1/payments/export" | "/v1/deposits/export", filename: string, label: string): HTMLButtonElement {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button small ghost";
  button.textContent = label;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const headers: Record<string, string> = {};
      if (session.key) headers.Authorization = `Bearer ${session.key}`;
      const response = await fetch(path, { headers, credentials: "same-origin" });
      if (!response.ok) {
        button.textContent = "Export failed: try again";
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
      button.textContent = label;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
