import { api, problemText, session } from "../api/client";
import { h } from "../dom";
import { messageSlot } from "../ui";

/**
 * Sign-in: email and password (then the authenticator code, once two-factor sign-in is on), or
 * an API key, as scripts use. A password sign-in gets an HttpOnly session cookie; a key is
 * checked against GET /v1/account before it is kept.
 */
export function signInPage(onSignedIn: () => void, notice?: string): HTMLElement {
  const message = messageSlot();
  if (notice) message.show("info", notice);
  const wrap = h("main", { id: "main", class: "signin-wrap" }, h("div", { class: "brand large" }, logo(), "ordersvc"));
  const passwordForm = passwordSignIn(onSignedIn, message);
  const keyForm = keySignIn(onSignedIn, message);
  keyForm.hidden = true;
  const toggle = h("button", { type: "button", class: "button ghost small", id: "use-api-key" }, "Sign in with an API key instead");
  toggle.addEventListener("click", () => {
    const toKey = keyForm.hidden;
    keyForm.hidden = !toKey;
    passwordForm.hidden = toKey;
    toggle.textContent = toKey ? "Sign in with email and password instead" : "Sign in with an API key instead";
    message.clear();
    (toKey ? keyForm : passwordForm).querySelector("input")?.focus();
  });
  wrap.append(
    h("div", { class: "card signin" }, h("h1", { id: "signin-title" }, "Sign in"), message.element, passwordForm, keyForm, toggle),
    h(
      "p",
      { class: "signin-links" },
      h("a", { href: "#/signup", id: "to-signup" }, "Create an account"),
      " · ",
      h("a", { href: "#/forgot", id: "to-forgot" }, "Forgot your password?"),
    ),
  );
  queueMicrotask(() => passwordForm.querySelector("input")?.focus());
  return wrap;
}

function passwordSignIn(onSignedIn: () => void, message: ReturnType<typeof messageSlot>): HTMLFormElement {
  const email = h("input", { id: "signin-email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = h("input", {
    id: "signin-code",
    name: "totp",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    "aria-describedby": "signin-code-help",
  });
  const codeField = h(
    "div",
    { class: "field", hidden: true },
    h("label", { for: "signin-code" }, "Authenticator code"),
    code,
    h("p", { id: "signin-code-help", class: "help" }, "The 6 digits your app shows now, or one of your recovery codes."),
  );
  const submit = h("button", { type: "submit", class: "button primary", id: "signin-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-labelledby": "signin-title" },
    h("label", { for: "signin-email" }, "Email"),
    email,
    h("label", { for: "signin-password" }, "Password"),
    password,
    codeField,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      message.show("error", "Enter your email and password.");
      return;
    }
    submit.disabled = true;
    message.clear();
    try {
      const { data, error } = await api.POST("/v1/auth/login", {
        body: { email: email.value.trim(), password: password.value, totp_code: codeField.hidden ? undefined : code.value.trim() || undefined },
      });
      if (data) {
        onSignedIn();
        return;
      }
      if (error?.code === "totp_required") {
        codeField.hidden = false;
        message.show("info", "Two-factor sign-in is on for this account. Enter the code from your authenticator app.");
        code.focus();
        return;
      }
      message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function keySignIn(onSignedIn: () => void, message: ReturnType<typeof messageSlot>): HTMLFormElement {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "osk_…",
    "aria-describedby": "api-key-help",
  });
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in with the key");
  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-label": "Sign in with a key" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "An API key from the account's settings or from your operator. It stays in this browser tab only and is forgotten when you close it.",
    ),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      message.show("error", "Enter your API key.");
      input.focus();
      return;
    }
    submit.disabled = true;
    message.clear();
    try {
      const { data, error, response } = await api.GET("/v1/account", { headers: { Authorization: `Bearer ${key}` } });
      if (data) {
        session.signIn(key);
        onSignedIn();
        return;
      }
      message.show("error", response.status === 401 ? "This API key is not valid. Check it and try again." : problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
    input.focus();
  });
  return form;
}

export function logo(): HTMLElement {
  return h("span", { class: "logo", "aria-hidden": "true" }, "◆");
}
