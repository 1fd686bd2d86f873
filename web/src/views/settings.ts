import { api, problemText } from "../api/client";
import type { AppContext, Page } from "../app";
import { fill, h, type Child } from "../dom";
import { timeElement } from "../format";
import { qrCode } from "../qr";
import { copyButton, messageSlot } from "../ui";

/** Account settings: API keys, password, two-factor sign-in and browser sessions. */
export function settingsPage(context: AppContext): Page {
  // Whether the account has a password decides what the password and two-factor cards offer.
  const security = api.GET("/v1/account/security").then(({ data }) => data ?? null);
  const element = h("div", { class: "page stack" }, apiKeysCard(), passwordCard(security), totpCard(security), sessionsCard(context));
  return { title: "Settings", element };
}

type Security = { email: string; has_password: boolean; totp_enabled: boolean };

/** An account made by the operator has no password: it is set through an emailed link. */
function setPasswordByLink(security: Security, message: ReturnType<typeof messageSlot>): HTMLElement {
  const send = h("button", { type: "submit", class: "button primary", id: "set-password-link" }, "Email me a link to set a password");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    h("p", { id: "no-password" }, "Your account has no password yet: you sign in with an API key. To sign in with your email and a password (and to turn on two-factor sign-in), set a password through a link sent to ", h("strong", null, security.email), "."),
    send,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    try {
      const { error, response } = await api.POST("/v1/auth/password-reset", { body: { email: security.email } });
      if (response.status === 202) message.show("success", `A link to set your password is on its way to ${security.email}.`);
      else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      send.disabled = false;
    }
  });
  return form;
}

function card(title: string, id: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

function input(id: string, label: string, type = "password", autocomplete = "current-password"): [HTMLElement, HTMLInputElement] {
  const element = h("input", { id, name: id, type, autocomplete, required: true });
  return [h("div", { class: "field" }, h("label", { for: id }, label), element), element];
}

function apiKeysCard(): HTMLElement {
  const message = messageSlot();
  const list = h("ul", { class: "key-list", id: "api-key-list" });
  const [nameField, name] = input("key-name", "Name (what the key is for)", "text", "off");
  name.required = false;
  const create = h("button", { type: "submit", class: "button primary", id: "create-key" }, "Create an API key");
  const form = h("form", { class: "inline-form", novalidate: true }, nameField, create);
  const load = async (): Promise<void> => {
    const { data } = await api.GET("/v1/api-keys");
    if (!data) return;
    fill(
      list,
      data.data.map((key) => {
        const revoke = h("button", { type: "button", class: "button small ghost" }, "Revoke");
        revoke.addEventListener("click", async () => {
          if (!window.confirm(`Revoke ${key.prefix}…? Requests with it stop working at once.`)) return;
          const { error, response } = await api.DELETE("/v1/api-keys/{prefix}", { params: { path: { prefix: key.prefix } } });
          if (response.status === 204) await load();
          else message.show("error", problemText(error));
        });
        return h(
          "li",
          { "data-prefix": key.prefix },
          h("code", null, `${key.prefix}…`),
          " ",
          key.name ? h("strong", null, key.name) : null,
          " ",
          h("span", { class: "muted" }, key.revoked ? "revoked " : "created ", timeElement(key.revoked ?? key.created)),
          key.revoked ? null : revoke,
        );
      }),
    );
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/api-keys", { body: { name: name.value.trim() } });
      if (data) {
        const shown = h("code", { id: "new-api-key", class: "secret" }, data.api_key);
        message.show("success", ["Your new key (shown only now, store it): ", shown, " ", copyButton(() => data.api_key, "Copy the new API key")]);
        form.reset();
        await load();
      } else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      create.disabled = false;
    }
  });
  void load();
  return card("API keys", "keys-title", h("p", { class: "help" }, "Keys are for scripts and the legacy API. Only a key's start is shown after it is created."), form, message.element, list);
}

function passwordCard(security: Promise<Security | null>): HTMLElement {
  const message = messageSlot();
  const body = h("div", { class: "stack" });
  const [currentField, current] = input("current-password", "Current password");
  const [nextField, next] = input("new-password", "New password", "password", "new-password");
  const button = h("button", { type: "submit", class: "button primary" }, "Change password");
  const form = h("form", { class: "stack", novalidate: true }, currentField, nextField, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const { error, response } = await api.POST("/v1/account/password", {
        body: { current_password: current.value, new_password: next.value },
      });
      if (response.status === 204) {
        message.show("success", "Your password is changed. Other browsers were signed out.");
        form.reset();
      } else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      button.disabled = false;
    }
  });
  void security.then((known) => fill(body, known && !known.has_password ? setPasswordByLink(known, message) : form));
  return card("Password", "password-title", body, message.element);
}

function totpCard(security: Promise<Security | null>): HTMLElement {
  const message = messageSlot();
  const body = h("div", { class: "stack" });
  let first = true;
  const render = async (): Promise<void> => {
    const data = first ? await security : ((await api.GET("/v1/account/security")).data ?? null);
    first = false;
    if (!data) return;
    if (!data.has_password) {
      // Its codes protect sign-in with a password: there is none to protect yet, and no current
      // password to confirm the change with.
      fill(body, h("p", { id: "totp-state" }, "Two-factor sign-in protects signing in with a password. Set a password first (above), then turn it on here."));
      return;
    }
    const [passwordField, password] = input("totp-password", "Current password");
    if (data.totp_enabled) {
      const off = h("button", { type: "submit", class: "button ghost" }, "Turn two-factor sign-in off");
      const form = h("form", { class: "stack", novalidate: true }, h("p", { id: "totp-state" }, "Two-factor sign-in is on."), passwordField, off);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const { error, response } = await api.POST("/v1/account/totp/disable", { body: { current_password: password.value } });
        if (response.status === 204) {
          message.show("success", "Two-factor sign-in is off.");
          await render();
        } else message.show("error", problemText(error));
      });
      fill(body, form);
      return;
    }
    const start = h("button", { type: "submit", class: "button primary", id: "totp-start" }, "Set up an authenticator app");
    const form = h("form", { class: "stack", novalidate: true }, h("p", { id: "totp-state" }, "Two-factor sign-in is off."), passwordField, start);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { data: started, error } = await api.POST("/v1/account/totp", { body: { current_password: password.value } });
      if (!started) {
        message.show("error", problemText(error));
        return;
      }
      message.clear();
      const [codeField, code] = input("totp-code", "The 6-digit code the app shows", "text", "one-time-code");
      code.inputMode = "numeric";
      const confirm = h("button", { type: "submit", class: "button primary", id: "totp-confirm" }, "Turn on");
      const confirmForm = h("form", { class: "stack", novalidate: true }, codeField, confirm);
      confirmForm.addEventListener("submit", async (submitEvent) => {
        submitEvent.preventDefault();
        const { data: codes, error: refused } = await api.POST("/v1/account/totp/confirm", { body: { code: code.value.trim() } });
        if (!codes) {
          message.show("error", problemText(refused));
          return;
        }
        fill(
          body,
          h("p", { id: "totp-state" }, "Two-factor sign-in is on."),
          h("p", null, "Recovery codes: each signs in once instead of a code. Store them now: they are not shown again."),
          h("ul", { class: "recovery-codes", id: "recovery-codes" }, codes.recovery_codes.map((c) => h("li", null, h("code", null, c)))),
          copyButton(() => codes.recovery_codes.join("\n"), "Copy the recovery codes"),
        );
      });
      fill(
        body,
        h("p", null, "Scan this code with an authenticator app, or type the key by hand."),
        qrCode(started.otpauth_uri, "QR code for your authenticator app"),
        h("p", null, "Key: ", h("code", { id: "totp-secret" }, started.secret)),
        confirmForm,
      );
      code.focus();
    });
    fill(body, form);
  };
  void render();
  return card("Two-factor sign-in", "totp-title", body, message.element);
}

function sessionsCard(context: AppContext): HTMLElement {
  const list = h("ul", { class: "session-list", id: "session-list" });
  const everywhere = h("button", { type: "button", class: "button ghost", id: "sign-out-everywhere" }, "Sign out everywhere");
  everywhere.addEventListener("click", async () => {
    if (!window.confirm("Sign out every browser, this one included? API keys keep working.")) return;
    await api.POST("/v1/auth/logout-everywhere");
    context.signedOut("You are signed out everywhere.");
  });
  void (async () => {
    const { data } = await api.GET("/v1/auth/sessions");
    if (!data) return;
    fill(
      list,
      data.data.length === 0
        ? h("li", null, "No browser sessions (you signed in with an API key).")
        : data.data.map((s) =>
            h("li", null, s.current ? h("strong", null, "This browser · ") : null, `${s.user_agent || "Unknown browser"} · ${s.ip} · since `, timeElement(s.created)),
          ),
    );
  })();
  return card("Signed-in browsers", "sessions-title", list, everywhere);
}
