import type { AppContext, Page } from "../app";
import { h } from "../dom";
import { endpointUrl, type Example, EXAMPLES, fillExample, PANEL_EXAMPLES, REST_EXAMPLES } from "../examples";
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

/** A tab list of examples over one code block; `fillIn` puts the customer's key and URLs in. */
function exampleTabs(examples: Example[], label: string, idPrefix: string, fillIn: (template: string) => string): { tabs: HTMLElement; code: HTMLElement } {
  const code = h("pre", { class: "code", tabindex: 0, id: `${idPrefix}-code` }, h("code"));
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": label });
  const show = (id: string, focus = false): void => {
    const example = examples.find((e) => e.id === id) ?? examples[0]!;
    for (const button of tabs.querySelectorAll<HTMLButtonElement>("button")) {
      const selected = button.dataset.example === example.id;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      if (selected && focus) button.focus();
    }
    code.setAttribute("aria-labelledby", `${idPrefix}-tab-${example.id}`);
    code.dataset.language = example.language;
    code.firstElementChild!.textContent = fillIn(example.template);
  };
  examples.forEach((example, index) => {
    const button = h("button", { type: "button", role: "tab", class: "tab", id: `${idPrefix}-tab-${example.id}`, "data-example": example.id, "aria-controls": `${idPrefix}-code` }, example.label);
    button.addEventListener("click", () => show(example.id));
    button.addEventListener("keydown", onArrowKeys(index, examples.length, (next) => show(examples[next]!.id, true)));
    tabs.append(button);
  });
  show(examples[0]!.id);
  return { tabs, code };
}

export function apiPage(context: AppContext): Page {
  const key = context.key ?? "YOUR_API_KEY";
  const base = window.location.origin;
  const endpoint = endpointUrl(base, key);
  const rest = exampleTabs(REST_EXAMPLES, "REST examples", "rest-example", (t) => fillExample(t, key, endpoint, base));
  const legacy = exampleTabs(EXAMPLES, "Legacy examples", "example", (t) => fillExample(t, key, endpoint, base));
  const panel = exampleTabs(PANEL_EXAMPLES, "Panel API v2 examples", "panel-example", (t) => fillExample(t, key, endpoint, base));
  const panelEndpoint = `${base}/api/v2`;

  const element = h(
    "div",
    { class: "page" },
    h(
      "section",
      { class: "card", "aria-labelledby": "rest-title" },
      h("div", { class: "card-head" }, h("h2", { id: "rest-title" }, "REST API: for new integrations"), copyButton(() => rest.code.textContent ?? "", "Copy the REST example")),
      h(
        "p",
        null,
        "Typed JSON under ",
        h("code", null, base + "/v1"),
        ", with your key in an ",
        h("code", null, "Authorization: Bearer"),
        " header (never in a URL). Errors are problem documents with a stable ",
        h("code", null, "code"),
        "; generate a client from the OpenAPI document. ",
        // Relative: right behind a path prefix too.
        h("a", { href: "docs", id: "docs-link" }, "Interactive reference"),
        " · ",
        h("a", { href: "openapi.json" }, "OpenAPI document"),
      ),
      rest.tabs,
      rest.code,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "endpoint-title" },
      h("h2", { id: "endpoint-title" }, "Legacy action API: for existing clients"),
      h("p", null, "Post JSON to this URL with Content-Type ", h("code", null, "application/json"), ". It carries your API key: keep it private, and prefer the REST API for new code."),
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
      { class: "card", "aria-labelledby": "panel-title" },
      h("div", { class: "card-head" }, h("h2", { id: "panel-title" }, "Panel API v2: for reseller panels"), copyButton(() => panel.code.textContent ?? "", "Copy the panel API example")),
      h(
        "p",
        null,
        "The API v2 dialect that reseller panels share: point your existing client at this URL, with your key as the ",
        h("code", null, "key"),
        " form field. Our one service is ",
        h("code", null, "service=1"),
        " and ",
        h("code", null, "link"),
        " is the recipient's email; order ids are numbers (the 8-hex order id read as a number: ",
        h("code", null, "A7E17A3E"),
        " is ",
        h("code", null, "2816571966"),
        "). Actions: ",
        ...["services", "add", "status", "cancel", "balance", "refill", "refill_status"].flatMap((action, i) => [i > 0 ? ", " : "", h("code", null, action)]),
        ". Errors are HTTP 200 with an ",
        h("code", null, "error"),
        " field, as the dialect has them.",
      ),
      h("div", { class: "endpoint" }, h("code", { id: "panel-endpoint-url" }, panelEndpoint), copyButton(() => panelEndpoint, "Copy the panel API URL")),
      panel.tabs,
      panel.code,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "examples-title" },
      h("div", { class: "card-head" }, h("h2", { id: "examples-title" }, "Legacy examples"), copyButton(() => legacy.code.textContent ?? "", "Copy the example")),
      legacy.tabs,
      legacy.code,
    ),
  );
  return { title: "API", element };
}
