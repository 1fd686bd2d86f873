import type { AppContext, Page } from "../app";
import { h } from "../dom";
import { endpointUrl, EXAMPLES, fillExample } from "../examples";
import { QUANTITY_ERROR } from "../limits";
import { copyButton, onArrowKeys } from "../ui";

// The legacy API's errors, as the reference lists them.
const ERRORS = [
  "Invalid key.",
  "Invalid params.",
  "Invalid email.",
  QUANTITY_ERROR,
  "Insufficient balance.",
  "Unknown action.",
];

export function apiPage(context: AppContext): Page {
  const endpoint = endpointUrl(window.location.origin, context.key ?? "YOUR_API_KEY");
  const code = h("pre", { class: "code", tabindex: 0, id: "example-code" }, h("code"));
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Language" });
  let current = EXAMPLES[0]!;
  const show = (id: string, focus = false): void => {
    const example = EXAMPLES.find((e) => e.id === id) ?? EXAMPLES[0]!;
    current = example;
    for (const button of tabs.querySelectorAll<HTMLButtonElement>("button")) {
      const selected = button.dataset.example === example.id;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      if (selected && focus) button.focus();
    }
    code.setAttribute("aria-labelledby", `example-tab-${example.id}`);
    code.dataset.language = example.language;
    code.firstElementChild!.textContent = fillExample(example.template, context.key ?? "YOUR_API_KEY", endpoint);
  };
  EXAMPLES.forEach((example, index) => {
    const button = h("button", { type: "button", role: "tab", class: "tab", id: `example-tab-${example.id}`, "data-example": example.id, "aria-controls": "example-code" }, example.label);
    button.addEventListener("click", () => show(example.id));
    button.addEventListener("keydown", onArrowKeys(index, EXAMPLES.length, (next) => show(EXAMPLES[next]!.id, true)));
    tabs.append(button);
  });
  show(current.id);

  const element = h(
    "div",
    { class: "page" },
    h(
      "section",
      { class: "card", "aria-labelledby": "endpoint-title" },
      h("h2", { id: "endpoint-title" }, "Your endpoint"),
      h("p", null, "Post JSON to this URL with Content-Type ", h("code", null, "application/json"), ". It carries your API key: keep it private."),
      h("div", { class: "endpoint" }, h("code", { id: "endpoint-url" }, endpoint), copyButton(() => endpoint, "Copy the endpoint URL")),
      h(
        "table",
        { class: "actions-table" },
        h("caption", { class: "visually-hidden" }, "Actions"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Request"), h("th", { scope: "col" }, "Does"))),
        h(
          "tbody",
          null,
          [
            ['{"action":"balance"}', "Balance"],
            ['{"action":"orders"}', "Orders"],
            ['{"action":"payments"}', "Payments"],
            ['{"action":"order", "email": "billgates@microsoft.com", "quantity": 10000}', "Place order"],
          ].map(([request, does]) => h("tr", null, h("td", null, h("code", null, request)), h("td", null, does))),
        ),
      ),
      h(
        "p",
        { class: "help" },
        "Orders and payments accept page and per_page (1..100); without them you get the last page with per_page=100. Times are UTC, YYYY-MM-DD HH:MM:SS. Errors come back as JSON with the error field:",
      ),
      h(
        "ul",
        { class: "error-list" },
        ERRORS.map((message) => h("li", null, h("code", null, JSON.stringify({ error: message })))),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "examples-title" },
      h("div", { class: "card-head" }, h("h2", { id: "examples-title" }, "Examples"), copyButton(() => code.textContent ?? "", "Copy the example")),
      tabs,
      code,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "rest-title" },
      h("h2", { id: "rest-title" }, "REST API"),
      h(
        "p",
        null,
        "New integrations can use the typed REST API under ",
        h("code", null, "/v1"),
        " with your key in an ",
        h("code", null, "Authorization: Bearer"),
        " header. ",
        h("a", { href: "/docs", id: "docs-link" }, "Interactive reference"),
        " · ",
        h("a", { href: "/openapi.json" }, "OpenAPI document"),
      ),
    ),
  );
  return { title: "API", element };
}
