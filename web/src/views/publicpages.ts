import { api, problemText } from "../api/client";
import { fill, h, type Child } from "../dom";
import { messageSlot } from "../ui";
import { logo } from "./signin";

/** The pages reached without signing in: sign-up, the emailed links, a forgotten password. */
export function publicPage(path: string): HTMLElement | null {
  const [name, token] = path.split("/", 2);
  if (name === "signup") return signUpPage();
  if (name === "forgot") return forgotPage();
  if (name === "verify" && token) return verifyPage(token);
  if (name === "reset" && token) return resetPage(token);
  return null;
}

function frame(title: string, ...children: Child[]): HTMLElement {
  return h(
    "main",
    { id: "main", class: "signin-wrap" },
    h("div", { class: "brand large" }, logo(), "ordersvc"),
    h("div", { class: "card signin" }, h("h1", { id: "public-title" }, title), ...children),
    h("p", { class: "signin-links" }, h("a", { href: "#/login", id: "to-signin" }, "Back to sign-in")),
  );
}

function field(id: string, label: string, attrs: Record<string, string | boolean>, help?: string): [HTMLElement, HTMLInputElement] {
  const input = h("input", { id, name: id, required: true, ...(help ? { "aria-describedby": `${id}-help` } : {}), ...attrs });
  return [h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("p", { id: `${id}-help`, class: "help" }, help) : null), input];
}

function submitting(
  form: HTMLFormElement,
  button: HTMLButtonElement,
  message: ReturnType<typeof messageSlot>,
  send: () => Promise<{ ok: true; text: Child } | { ok: false; error: unknown }>,
): void {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    message.clear();
    try {
      const result = await send();
      if (result.ok) {
        message.show("success", result.text);
        form.reset();
      } else message.show("error", problemText(result.error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      button.disabled = false;
    }
  });
}

const PASSWORD_HELP = "At least 10 characters; a common password is refused. A few words make a good one.";

/** Sign-up takes the address only: the password is chosen from the emailed link, so nobody can
 * set one for an address they do not read. */
function signUpPage(): HTMLElement {
  const message = messageSlot();
  const [emailField, email] = field(
    "signup-email",
    "Email",
    { type: "email", autocomplete: "email" },
    "We send a link to this address. Follow it to choose your password.",
  );
  const button = h("button", { type: "submit", class: "button primary", id: "signup-submit" }, "Create account");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "public-title" }, emailField, button);
  submitting(form, button, message, async () => {
    const { data, error } = await api.POST("/v1/auth/signup", { body: { email: email.value.trim() } });
    return data ? { ok: true, text: data.message } : { ok: false, error };
  });
  queueMicrotask(() => email.focus());
  return frame("Create an account", message.element, form);
}

function forgotPage(): HTMLElement {
  const message = messageSlot();
  const [emailField, email] = field("forgot-email", "Email", { type: "email", autocomplete: "email" });
  const button = h("button", { type: "submit", class: "button primary" }, "Send a reset link");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "public-title" }, emailField, button);
  submitting(form, button, message, async () => {
    const { data, error } = await api.POST("/v1/auth/password-reset", { body: { email: email.value.trim() } });
    return data ? { ok: true, text: data.message } : { ok: false, error };
  });
  queueMicrotask(() => email.focus());
  return frame("Forgot your password?", message.element, form);
}

/** A reset signs out every browser; revoking the API keys is offered, off by default: keys are
 * scripts' credentials, and a forgotten password does not leak them. */
function resetPage(token: string): HTMLElement {
  const message = messageSlot();
  const [passwordField, password] = field("reset-password", "New password", { type: "password", autocomplete: "new-password" }, PASSWORD_HELP);
  const revoke = h("input", { id: "reset-revoke-keys", name: "revoke_api_keys", type: "checkbox", "aria-describedby": "reset-revoke-keys-help" });
  const revokeField = h(
    "div",
    { class: "field" },
    h("label", { for: "reset-revoke-keys" }, revoke, " Also revoke all API keys"),
    h(
      "p",
      { id: "reset-revoke-keys-help", class: "help" },
      "Do this if someone else may have used your account: scripts using the keys stop working, and you make new keys in Settings. Every browser signed in to the account is signed out in any case.",
    ),
  );
  const button = h("button", { type: "submit", class: "button primary" }, "Set the new password");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "public-title" }, passwordField, revokeField, button);
  submitting(form, button, message, async () => {
    const body = { token, password: password.value, revoke_api_keys: revoke.checked };
    const { error, response } = await api.POST("/v1/auth/password-reset/confirm", { body });
    if (response.status !== 204) return { ok: false, error };
    const keys = body.revoke_api_keys ? "Every API key is revoked and every" : "Every";
    return { ok: true, text: [`Your password is set. ${keys} browser is signed out. `, h("a", { href: "#/login" }, "Sign in"), "."] };
  });
  queueMicrotask(() => password.focus());
  return frame("Choose a new password", message.element, form);
}

/**
 * An emailed link: a new address after an email change is verified at once; a new account's link
 * is where its password is chosen (the server answers `password_required` for the token alone,
 * spending nothing), and then the page signs in with it.
 */
function verifyPage(token: string): HTMLElement {
  const message = messageSlot();
  const slot = h("div");
  message.show("info", "Checking your link…");
  const verified = (email: string): Child => [`${email} is verified. `, h("a", { href: "#/login", id: "verified-signin" }, "Sign in"), "."];
  void (async () => {
    try {
      const { data, error } = await api.POST("/v1/auth/verify-email", { body: { token } });
      if (data) message.show("success", verified(data.email));
      else if (error?.code === "password_required") {
        message.clear();
        fill(slot, choosePasswordForm(token, message, verified));
      } else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    }
  })();
  return frame("Verify your address", message.element, slot);
}

function choosePasswordForm(token: string, message: ReturnType<typeof messageSlot>, verified: (email: string) => Child): HTMLElement {
  const [passwordField, password] = field("verify-password", "Choose a password", { type: "password", autocomplete: "new-password" }, PASSWORD_HELP);
  const button = h("button", { type: "submit", class: "button primary", id: "verify-submit" }, "Verify and sign in");
  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-labelledby": "public-title" },
    h("p", {}, "Your address is confirmed by this link. Choose the password of your account to finish."),
    passwordField,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    message.clear();
    try {
      const { data, error } = await api.POST("/v1/auth/verify-email", { body: { token, password: password.value } });
      if (!data) {
        message.show("error", problemText(error));
        return;
      }
      form.remove();
      const signedIn = await api.POST("/v1/auth/login", { body: { email: data.email, password: password.value } });
      if (signedIn.data) window.location.hash = "#/orders";
      else message.show("success", verified(data.email));
    } catch {
      message.show("error", problemText(null));
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => password.focus());
  return form;
}
