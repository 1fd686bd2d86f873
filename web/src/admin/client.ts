// The console's only way to the service: `/v1/admin`, typed from the OpenAPI document. The
// operator session is an HttpOnly cookie scoped to /v1/admin; its CSRF token is held in memory
// only (from sign-in, or GET /v1/admin/me after a reload) and sent with every change.

import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema";

export type Schemas = components["schemas"];

let csrf: string | null = null;
let onSessionEnded: () => void = () => {};

export function setCsrf(token: string | null): void {
  csrf = token;
}

export function whenSessionEnds(handler: () => void): void {
  onSessionEnded = handler;
}

export const api = createClient<paths>({ baseUrl: "" });

api.use({
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD" && csrf) request.headers.set("X-CSRF-Token", csrf);
    return request;
  },
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname;
    if (response.status === 401 && csrf !== null && !path.startsWith("/v1/admin/auth/")) {
      csrf = null;
      onSessionEnded();
    }
    return response;
  },
});

/** The problem's detail, or why there was no answer. */
export function problemText(error: unknown): string {
  if (error && typeof error === "object") {
    const problem = error as { code?: string; detail?: string; errors?: { loc: (string | number)[]; msg: string }[] };
    if (problem.code === "validation_error" && problem.errors && problem.errors.length > 0) {
      return problem.errors.map((e) => `${String(e.loc[e.loc.length - 1] ?? "")}: ${e.msg}`).join(" ");
    }
    if (typeof problem.detail === "string") return problem.detail;
  }
  return "The service could not be reached. Please try again.";
}

export async function dataOrProblem<T>(call: () => Promise<{ data?: T; error?: unknown }>): Promise<T | string> {
  try {
    const { data, error } = await call();
    return data ?? problemText(error);
  } catch {
    return problemText(null);
  }
}

export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A same-origin link to a CSV export with these filters (the cookie goes with it). */
export function exportUrl(path: string, query: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== "" && value !== false) params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}
