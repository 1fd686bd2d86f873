import "./styles.css";
import { api, forgetCsrf, session, whenUnauthorized } from "./api/client";
import { fetchBalance, type AppContext, type Page } from "./app";
import { fill, h } from "./dom";
import { exactTitle, usd } from "./format";
import * as live from "./live";
import { apiPage } from "./views/apipage";
import { depositsPage } from "./views/deposits";
import { massOrderPage } from "./views/massorder";
import { ordersPage } from "./views/orders";
import { paymentsPage } from "./views/payments";
import { publicPage } from "./views/publicpages";
import { settingsPage } from "./views/settings";
import { webhooksPage } from "./views/webhooks";
import { logo, signInPage } from "./views/signin";

const ROUTES: { path: string; label: string; page: (context: AppContext) => Page }[] = [
  { path: "orders", label: "Orders", page: ordersPage },
  { path: "mass-order", label: "Mass order", page: massOrderPage },
  { path: "deposits", label: "Deposits", page: () => depositsPage() },
  { path: "payments", label: "Payments", page: paymentsPage },
  { path: "webhooks", label: "Webhooks", page: webhooksPage },
  { path: "api", label: "API", page: apiPage },
  { path: "settings", label: "Settings", page: settingsPage },
];
const BALANCE_REFRESH_MS = 15_000;

const root = document.getElementById("app")!;
let stopShell: (() => void) | null = null;

function currentPath(): string {
  return window.location.hash.replace(/^#\/?/, "");
}

function showSignIn(notice?: string): void {
  document.title = "Sign in · ordersvc";
  if (currentPath() !== "login") history.replaceState(null, "", "#/login");
  fill(root, signInPage(() => start(), notice));
}

/** Public pages (sign-up, emailed links) first; then the shell if a key or a live session is
 * there; else the sign-in page. */
function start(notice?: string): void {
  stopShell?.();
  stopShell = null;
  const publicView = publicPage(currentPath());
  if (publicView) {
    document.title = "ordersvc";
    fill(root, publicView);
    return;
  }
  if (session.key) {
    void openShell(session.key);
    return;
  }
  if (!session.cookie) {
    showSignIn(notice);
    return;
  }
  void (async () => {
    try {
      const { response } = await api.GET("/v1/account");
      if (response.ok) {
        if (currentPath() === "login" || currentPath() === "") history.replaceState(null, "", "#/orders");
        void openShell(null);
        return;
      }
    } catch {
      // fall through to the sign-in page
    }
    forgetCsrf(); // the session it belonged to has ended
    showSignIn(notice);
  })();
}

window.addEventListener("hashchange", () => {
  // Between the public pages and the sign-in page, routing is here; the shell routes its own.
  if (stopShell === null) start();
});

async function openShell(key: string | null): Promise<void> {
  const balance = h("span", { class: "balance-value", id: "balance" }, h("span", { class: "skeleton short" }));
  const email = h("span", { class: "account-email" });
  const nav = h("nav", { class: "nav", "aria-label": "Dashboard", id: "main-nav" });
  // At phone width the pages are behind this button (styles.css); wider, it is hidden.
  const menuToggle = h("button", { type: "button", class: "button small ghost menu-toggle", "aria-expanded": "false", "aria-controls": "main-nav" }, "Menu");
  const setMenu = (open: boolean): void => {
    menuToggle.setAttribute("aria-expanded", String(open));
    menuToggle.closest(".topbar")?.classList.toggle("menu-open", open);
  };
  menuToggle.addEventListener("click", () => setMenu(menuToggle.getAttribute("aria-expanded") !== "true"));
  nav.addEventListener("click", (event) => {
    if ((event.target as Element).closest("a")) setMenu(false);
  });
  const main = h("main", { id: "main", class: "main", tabindex: -1 });
  const signOut = h("button", { type: "button", class: "button ghost small", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    await session.signOut();
    start("You are signed out.");
  });
  fill(
    root,
    skipLink(main),
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: "#/orders" }, logo(), "ordersvc"),
      menuToggle,
      nav,
      h(
        "div",
        { class: "account" },
        h("div", { class: "balance", role: "status", "aria-label": "Balance" }, h("span", { class: "balance-label" }, "Balance"), balance),
        email,
        signOut,
      ),
    ),
    main,
  );

  let balanceRequests = 0;
  let shownBalance: string | null = null;
  const showBalance = (value: string): void => {
    shownBalance = value;
    // To the cent; the exact balance on hover.
    if (balance.textContent !== usd(value) || balance.title !== exactTitle(value)) {
      fill(balance, usd(value));
      balance.title = exactTitle(value);
    }
  };
  const context: AppContext = {
    key,
    email: "",
    signedOut: (notice) => {
      forgetCsrf();
      start(notice);
    },
    balance: () => shownBalance,
    refreshBalance: async () => {
      // Answers may arrive out of order (a periodic read overtaken by the read after a debit):
      // only the latest request may write, and only a change is written (it is a live region).
      const request = ++balanceRequests;
      const value = await fetchBalance();
      if (value !== null && request === balanceRequests) showBalance(value);
    },
  };
  for (const route of ROUTES) {
    nav.append(h("a", { href: `#/${route.path}`, "data-route": route.path }, route.label));
  }

  let page: Page | null = null;
  const route = (): void => {
    if (window.location.hash !== "" && !window.location.hash.startsWith("#/")) return; // an in-page anchor
    const path = window.location.hash.replace(/^#\/?/, "");
    const target = ROUTES.find((r) => r.path === path);
    if (!target) {
      window.location.replace("#/orders");
      return;
    }
    page?.dispose?.();
    page = target.page(context);
    document.title = `${page.title} · ordersvc`;
    for (const link of nav.querySelectorAll("a")) {
      if (link.dataset.route === target.path) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    fill(main, h("h1", { class: "page-title" }, page.title), page.element);
  };
  const onHashChange = (): void => {
    route();
    main.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", onHashChange);
  // The balance moves with every payment: told by the live stream, else read every 15 seconds.
  const timer = window.setInterval(() => {
    if (document.visibilityState === "visible" && !live.connected()) void context.refreshBalance();
  }, BALANCE_REFRESH_MS);
  let balanceSoon: number | undefined;
  const stopListening = live.onEvent((event) => {
    if (event.type !== "payment.created" && event.type !== "balance.low") return;
    window.clearTimeout(balanceSoon);
    balanceSoon = window.setTimeout(() => void context.refreshBalance(), 200);
  });
  const stopWatching = live.onConnection((up) => {
    if (up) void context.refreshBalance(); // what moved while it was down
  });
  live.start();
  stopShell = () => {
    window.removeEventListener("hashchange", onHashChange);
    window.clearInterval(timer);
    window.clearTimeout(balanceSoon);
    stopListening();
    stopWatching();
    live.stop();
    page?.dispose?.();
  };
  route();

  try {
    const { data } = await api.GET("/v1/account");
    if (data) {
      context.email = data.email;
      email.textContent = data.email;
      email.title = `Signed in as ${data.email}`;
      balanceRequests++; // newer than any balance read still in flight
      showBalance(data.balance);
    }
  } catch {
    // The header keeps its placeholder; the pages say when the service cannot be reached.
  }
}

/** "Skip to content" moves the focus to the page's content without touching the route. */
function skipLink(main: HTMLElement): HTMLAnchorElement {
  const link = h("a", { href: "#main", class: "skip-link" }, "Skip to content");
  link.addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  return link;
}

whenUnauthorized(() => {
  const hadKey = session.key !== null;
  void session.signOut();
  start(hadKey ? "Your API key is no longer valid. Sign in with a current key." : "Your session has ended. Sign in again.");
});
start();
