import { api, problemText, session } from "../api/client";
import { h } from "../dom";
import { messageSlot } from "../ui";

/** Sign-in with an API key; the key is checked against GET /v1/account before it is kept. */
export function signInPage(onSignedIn: () => void, notice?: string): HTMLElement {
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
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const message = messageSlot();
  if (notice) message.show("info", notice);
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title", novalidate: true },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "Your API key was given to you when your account was opened. It stays in this browser tab only and is forgotten when you close it.",
    ),
    message.element,
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
    submit.textContent = "Checking…";
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
      submit.textContent = "Sign in";
    }
    input.focus();
  });
  queueMicrotask(() => input.focus());
  return h("main", { id: "main", class: "signin-wrap" }, h("div", { class: "brand large" }, logo(), "ordersvc"), form);
}

export function logo(): HTMLElement {
  return h("span", { class: "logo", "aria-hidden": "true" }, "◆");
}
