import { api } from "./api/client";

/** What every page of the signed-in dashboard shares. */
export interface AppContext {
  /** The API key in use, or null when signed in with a password (a session cookie). */
  key: string | null;
  email: string;
  /** Re-reads the balance shown in the header (after an order, a cancel, a coupon). */
  refreshBalance: () => Promise<void>;
  /** The balance last shown in the header (an exact API amount), or null before the first. */
  balance: () => string | null;
  /** Back to the sign-in page with this notice (the session has already ended). */
  signedOut: (notice: string) => void;
}

export interface Page {
  title: string;
  element: HTMLElement;
  /** Stops the page's timers when another page is shown. */
  dispose?: () => void;
}

export async function fetchBalance(): Promise<string | null> {
  try {
    const { data } = await api.GET("/v1/balance");
    return data?.balance ?? null;
  } catch {
    return null;
  }
}
