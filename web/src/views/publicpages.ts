import { api, problemText } from "../api/client";
import { h, type Child } from "../dom";
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

function signUpPage(): HTMLElement {
  const message = messageSlot();
  const [emailField, email] = field("signup-email", "Email", { type: "email", autocomplete: "email" });
  const [passwordField, password] = field("signup-password", "Password", { type: "password", autocomplete: "new-password" }, PASSWORD_HELP);
  const button = h("button", { type: "submit", class: "button primary", id: "signup-submit" }, "Create account");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "public-title" }, emailField, passwordField, button);
  submitting(form, button, message, async () => {
    const { data, error } = await api.POST("/v1/auth/signup", { body: { email: email.value.trim(), password: password.value } });
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

function resetPage(token: string): HTMLElement {
  const message = messageSlot();
  const [passwordField, password] = field("reset-password", "New password", { type: "password", autocomplete: "new-password" }, PASSWORD_HELP);
  const button = h("button", { type: "submit", class: "button primary" }, "Set the new password");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "public-title" }, passwordField, button);
  submitting(form, button, message, async () => {
    const { error, response } = await api.POST("/v1/auth/password-reset/confirm", { body: { token, password: password.value } });
    return response.status === 204 ? { ok: true, text: ["Your password is set. ", h("a", { href: "#/login" }, "Sign in"), "."] } : { ok: false, error };
  });
  queueMicrotask(() => password.focus());
  return frame("Choose a new password", message.element, form);
}

function verifyPage(token: string): HTMLElement {
  const message = messageSlot();
  message.show("info", "Verifying your address…");
  void (async () => {
    try {
      const { data, error } = await api.POST("/v1/auth/verify-email", { body: { token } });
      if (data) message.show("success", [`${data.email} is verified. `, h("a", { href: "#/login", id: "verified-signin" }, "Sign in"), "."]);
      else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    }
  })();
  return frame("Verify your address", message.element);
}
