// The operator's console at /admin: sign-in (password, then the authenticator code; the app is
// set up at the first sign-in), then the pages of the business. Hash routes, like the dashboard:
// #/set-password/<token> (the one-time link), #/overview, #/customers, #/customers/<id>,
// #/orders, #/deposits, #/audit, #/operators.

import "../styles.css";
import { fill, h } from "../dom";
import { qrCode } from "../qr";
import { messageSlot } from "../ui";
import { api, problemText, setCsrf, whenSessionEnds, type Schemas } from "./client";
import { auditPage, cataloguePage, customerPage, customersPage, depositsPage, operatorsPage, ordersPage, overviewPage, recipientsPage, type ConsolePage } from "./views";

type Me = Schemas["OperatorSessionOut"];

const root = document.getElementById("app")!;
let stopShell: (() => void) | null = null;

function path(): string {
  return window.location.hash.replace(/^#\/?/, "");
}

function brand(): HTMLElement {
  return h("span", { class: "brand" }, "ordersvc ", h("span", { class: "badge" }, "console"));
}

async function start(notice?: string): Promise<void> {
  stopShell?.();
  stopShell = null;
  const current = path();
  if (current.startsWith("set-password/")) {
    const token = current.slice("set-password/".length);
    history.replaceState(null, "", "#/set-password"); // the token leaves the address bar and history
    fill(root, setPasswordPage(token));
    return;
  }
  try {
    const { data, response } = await api.GET("/v1/admin/me");
    if (data) {
      setCsrf(data.csrf_token);
      if (data.stage === "enrol_totp") {
        fill(root, enrolPage(data));
        return;
      }
      openShell(data);
      return;
    }
    if (response.status !== 401) notice = "The service could not be reached. Please try again.";
  } catch {
    notice = "The service could not be reached. Please try again.";
  }
  fill(root, signInPage(notice));
}

function card(title: string, ...children: (Node | string)[]): HTMLElement {
  return h("main", { id: "main", class: "signin-wrap" }, h("div", { class: "brand large" }, brand()), h("div", { class: "card signin" }, h("h1", { id: "card-title" }, title), ...children));
}

function field(id: string, label: string, input: HTMLInputElement, help?: string): HTMLElement {
  if (help) input.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("p", { id: `${id}-help`, class: "help" }, help) : null);
}

function signInPage(notice?: string): HTMLElement {
  document.title = "Sign in · ordersvc console";
  const message = messageSlot();
  if (notice) message.show("info", notice);
  const email = h("input", { id: "op-email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "op-password", type: "password", autocomplete: "current-password", required: true });
  const code = h("input", { id: "op-code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8 });
  // The code field is always there: the answer to a sign-in never tells whether the password was
  // right, so the page cannot wait to be told that a code is needed.
  const codeField = field("op-code", "Authenticator code", code, "The 6 digits your authenticator app shows now. Leave it empty at your first sign-in: you set up the app next.");
  const submit = h("button", { type: "submit", class: "button primary", id: "op-signin" }, "Sign in");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "card-title" }, field("op-email", "Email", email), field("op-password", "Password", password), codeField, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.clear();
    try {
      const body = { email: email.value.trim(), password: password.value, totp_code: code.value.trim() || undefined };
      const { data, error } = await api.POST("/v1/admin/auth/login", { body });
      if (data) {
        setCsrf(data.csrf_token);
        if (window.location.hash === "" || path() === "login") history.replaceState(null, "", "#/overview");
        void start();
        return;
      }
      message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => email.focus());
  return card("Operator sign-in", message.element, form);
}

function setPasswordPage(token: string): HTMLElement {
  document.title = "Choose a password · ordersvc console";
  const message = messageSlot();
  const password = h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const submit = h("button", { type: "submit", class: "button primary", id: "set-password" }, "Set password");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "card-title" }, field("new-password", "New password", password, "At least 10 characters, not a common one."), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/admin/auth/set-password", { body: { token, password: password.value } });
      if (data) {
        history.replaceState(null, "", "#/login");
        fill(root, signInPage(`Password set for ${data.email}. Sign in; you will set up your authenticator app next.`));
        return;
      }
      message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => password.focus());
  return card("Choose your password", message.element, form);
}

function enrolPage(me: Me): HTMLElement {
  document.title = "Set up your authenticator · ordersvc console";
  const message = messageSlot();
  const secretSlot = h("div", { class: "stack", id: "totp-setup" }, h("p", null, h("span", { class: "skeleton" })));
  const code = h("input", { id: "enrol-code", inputmode: "numeric", autocomplete: "one-time-code", required: true, maxlength: 8 });
  const submit = h("button", { type: "submit", class: "button primary", id: "enrol-confirm" }, "Confirm");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "card-title" }, field("enrol-code", "Code from the app", code), submit);
  void (async () => {
    const { data, error } = await api.POST("/v1/admin/auth/totp/start");
    if (!data) {
      message.show("error", problemText(error));
      return;
    }
    fill(
      secretSlot,
      h("p", null, "Operators sign in with a second factor. Scan this code with your authenticator app, or type the key."),
      qrCode(data.otpauth_uri, "QR code of the authenticator key"),
      h("p", null, "Key: ", h("code", { class: "code", id: "totp-secret" }, data.secret)),
    );
  })();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/admin/auth/totp/confirm", { body: { code: code.value.trim() } });
      if (data) {
        setCsrf(data.csrf_token);
        history.replaceState(null, "", "#/overview");
        void start();
        return;
      }
      message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });
  return card(`Set up your authenticator, ${me.operator.email}`, message.element, secretSlot, form);
}

const ROUTES: { path: string; label: string; adminOnly?: boolean }[] = [
  { path: "overview", label: "Overview" },
  { path: "customers", label: "Customers" },
  { path: "orders", label: "Orders" },
  { path: "deposits", label: "Deposits" },
  { path: "recipients", label: "Recipients" },
  { path: "audit", label: "Audit log" },
  { path: "catalogue", label: "Catalogue", adminOnly: true },
  { path: "operators", label: "Operators", adminOnly: true },
];

function openShell(me: Me): void {
  const isAdmin = me.operator.role === "admin";
  const nav = h("nav", { class: "nav", "aria-label": "Console", id: "main-nav" });
  const menuToggle = h("button", { type: "button", class: "button small ghost menu-toggle", "aria-expanded": "false", "aria-controls": "main-nav" }, "Menu");
  menuToggle.addEventListener("click", () => {
    const open = menuToggle.getAttribute("aria-expanded") !== "true";
    menuToggle.setAttribute("aria-expanded", String(open));
    menuToggle.closest(".topbar")?.classList.toggle("menu-open", open);
  });
  for (const route of ROUTES) {
    if (route.adminOnly && !isAdmin) continue;
    nav.append(h("a", { href: `#/${route.path}`, "data-route": route.path }, route.label));
  }
  const main = h("main", { id: "main", class: "main", tabindex: -1 });
  const signOut = h("button", { type: "button", class: "button ghost small", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      await api.POST("/v1/admin/auth/logout");
    } catch {
      // signed out here either way
    }
    setCsrf(null);
    history.replaceState(null, "", "#/login");
    void start("You are signed out.");
  });
  const skip = h("a", { href: "#main", class: "skip-link" }, "Skip to content");
  skip.addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  fill(
    root,
    skip,
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: "#/overview" }, brand()),
      menuToggle,
      nav,
      h("div", { class: "account" }, h("span", { class: "account-email", id: "operator-email" }, `${me.operator.email} (${me.operator.role})`), signOut),
    ),
    main,
  );
  let page: ConsolePage | null = null;
  const route = (): void => {
    if (window.location.hash !== "" && !window.location.hash.startsWith("#/")) return;
    const [section = "", id] = path().split("/");
    page?.dispose?.();
    const context = { isAdmin };
    if (section === "customers" && id) page = customerPage(Number(id), context);
    else if (section === "customers") page = customersPage();
    else if (section === "orders") page = ordersPage(context);
    else if (section === "deposits") page = depositsPage(context);
    else if (section === "audit") page = auditPage();
    else if (section === "recipients") page = recipientsPage(context);
    else if (section === "catalogue" && isAdmin) page = cataloguePage();
    else if (section === "operators" && isAdmin) page = operatorsPage();
    else if (section === "overview") page = overviewPage();
    else {
      window.location.replace("#/overview");
      return;
    }
    document.title = `${page.title} · ordersvc console`;
    for (const link of nav.querySelectorAll("a")) {
      if (link.dataset.route === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    fill(main, h("h1", { class: "page-title" }, page.title), page.element);
  };
  const onHashChange = (): void => {
    route();
    main.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", onHashChange);
  stopShell = () => {
    window.removeEventListener("hashchange", onHashChange);
    page?.dispose?.();
  };
  route();
}

window.addEventListener("hashchange", () => {
  if (stopShell === null) void start();
});
whenSessionEnds(() => {
  void start("Your session has ended. Sign in again.");
});
void start();
