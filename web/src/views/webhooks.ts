import { api, problemText, type Schemas } from "../api/client";
import type { AppContext, Page } from "../app";
import { fill, h, type Child } from "../dom";
import { timeElement, usd } from "../format";
import { WEBHOOK_DESCRIPTION_MAX_LENGTH, WEBHOOK_URL_MAX_LENGTH } from "../limits";
import { copyButton, messageSlot } from "../ui";

type Endpoint = Schemas["WebhookEndpointOut"];
type EventType = Schemas["EventType"];
type Delivery = Schemas["WebhookDeliveryOut"];

// The event types, in the API's order, with what each tells.
const EVENT_TYPES: { type: EventType; help: string }[] = [
  { type: "order.created", help: "an order is placed" },
  { type: "order.status_changed", help: "an order moves: confirmed, in progress, completed, canceled..." },
  { type: "order.progress", help: "a worker reports progress (at most every 10 seconds)" },
  { type: "payment.created", help: "any change of your balance" },
  { type: "balance.low", help: "your balance goes below your alert threshold" },
];

function card(title: string, id: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** Webhook endpoints (create, enable or disable, rotate the secret, delete), each one's
 * deliveries (resend), and the low-balance alert. */
export function webhooksPage(_context: AppContext): Page {
  const element = h("div", { class: "page stack" }, endpointsCard(), alertCard());
  return { title: "Webhooks", element };
}

function endpointsCard(): HTMLElement {
  const message = messageSlot();
  const list = h("div", { class: "stack", id: "webhook-endpoints" });
  const url = h("input", { id: "webhook-url", name: "url", type: "url", required: true, placeholder: "https://example.com/hooks/ordersvc", autocomplete: "off", maxlength: WEBHOOK_URL_MAX_LENGTH });
  const boxes = EVENT_TYPES.map(({ type }) => h("input", { type: "checkbox", name: "event_types", value: type, id: `webhook-type-${type}` }));
  const types = h(
    "fieldset",
    { class: "event-types" },
    h("legend", null, "Events (none ticked: every event, and those added later)"),
    ...EVENT_TYPES.map(({ type, help }, i) =>
      h("div", { class: "checkbox" }, boxes[i], h("label", { for: `webhook-type-${type}` }, h("code", null, type), " ", h("span", { class: "muted" }, help))),
    ),
  );
  const description = h("input", { id: "webhook-description", name: "description", type: "text", maxlength: WEBHOOK_DESCRIPTION_MAX_LENGTH, autocomplete: "off" });
  const create = h("button", { type: "submit", class: "button primary", id: "create-webhook" }, "Add endpoint");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "webhook-url" }, "Endpoint URL (https)"), url),
    types,
    h("div", { class: "field" }, h("label", { for: "webhook-description" }, "Description (optional)"), description),
    create,
  );

  const load = async (): Promise<void> => {
    const { data, error } = await api.GET("/v1/webhook-endpoints");
    if (!data) {
      message.show("error", problemText(error));
      return;
    }
    fill(list, data.data.length === 0 ? h("p", { class: "muted" }, "No endpoints yet.") : data.data.map((e) => endpointView(e, load, message)));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value as EventType);
    try {
      const { data, error } = await api.POST("/v1/webhook-endpoints", {
        body: { url: url.value.trim(), event_types: chosen, description: description.value.trim(), enabled: true },
      });
      if (data) {
        const shown = h("code", { id: "new-webhook-secret", class: "secret" }, data.secret);
        message.show("success", ["Endpoint added. Its signing secret (shown only now, store it): ", shown, " ", copyButton(() => data.secret, "Copy the signing secret")]);
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
  return card(
    "Webhook endpoints",
    "webhooks-title",
    h("p", { class: "help" }, "Events are POSTed to each endpoint, signed (Standard Webhooks: verify with the ", h("code", null, "standardwebhooks"), " library), retried for 3 days, in order. See docs/webhooks.md."),
    form,
    message.element,
    list,
  );
}

function endpointView(endpoint: Endpoint, reload: () => Promise<void>, message: ReturnType<typeof messageSlot>): HTMLElement {
  const path = { params: { path: { endpoint_id: endpoint.id } } };
  const deliveries = h("div", { class: "deliveries" });
  const act = async (call: () => Promise<{ error?: unknown; response: Response }>, done: (response: Response) => Child): Promise<void> => {
    try {
      const { error, response } = await call();
      if (response.ok) {
        message.show("success", done(response));
        await reload();
      } else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    }
  };
  const toggle = h("button", { type: "button", class: "button small ghost" }, endpoint.enabled ? "Disable" : "Enable");
  toggle.addEventListener("click", () =>
    void act(() => api.PATCH("/v1/webhook-endpoints/{endpoint_id}", { ...path, body: { enabled: !endpoint.enabled } }), () => (endpoint.enabled ? "Endpoint disabled." : "Endpoint enabled.")),
  );
  const rotate = h("button", { type: "button", class: "button small ghost" }, "Rotate secret");
  rotate.addEventListener("click", async () => {
    if (!window.confirm("Make a new signing secret? The current one keeps signing beside it for 24 hours.")) return;
    try {
      const { data, error } = await api.POST("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", path);
      if (data) message.show("success", ["New signing secret (shown only now): ", h("code", { class: "secret" }, data.secret), " ", copyButton(() => data.secret, "Copy the new signing secret")]);
      else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    }
  });
  const remove = h("button", { type: "button", class: "button small ghost danger" }, "Delete");
  remove.addEventListener("click", () => {
    if (!window.confirm(`Delete the endpoint ${endpoint.url}? Nothing more is sent to it.`)) return;
    void act(() => api.DELETE("/v1/webhook-endpoints/{endpoint_id}", path), () => "Endpoint deleted.");
  });
  const show = h("button", { type: "button", class: "button small ghost", "aria-expanded": "false" }, "Deliveries");
  show.addEventListener("click", async () => {
    const open = show.getAttribute("aria-expanded") !== "true";
    show.setAttribute("aria-expanded", String(open));
    if (open) await loadDeliveries(endpoint, deliveries, message);
    else fill(deliveries);
  });
  const state = endpoint.enabled
    ? endpoint.failing_since
      ? h("span", { class: "badge status-partial" }, "failing")
      : h("span", { class: "badge status-completed" }, "enabled")
    : h("span", { class: "badge status-canceled", title: endpoint.disabled_reason ?? "" }, "disabled");
  return h(
    "article",
    { class: "webhook-endpoint", "data-endpoint": endpoint.id },
    h("div", { class: "card-head" }, h("h3", null, h("code", null, endpoint.url)), state),
    h(
      "p",
      { class: "muted" },
      endpoint.description ? [endpoint.description, " · "] : null,
      endpoint.event_types ? endpoint.event_types.join(", ") : "every event",
      " · added ",
      timeElement(endpoint.created),
      endpoint.failing_since ? [" · failing since ", timeElement(endpoint.failing_since)] : null,
      endpoint.previous_secret_expires ? [" · the old secret signs too until ", timeElement(endpoint.previous_secret_expires)] : null,
    ),
    endpoint.disabled_reason ? h("p", { class: "message error", role: "note" }, `Disabled: ${endpoint.disabled_reason}. Enable it once it answers again, then resend the failed deliveries.`) : null,
    h("div", { class: "actions" }, show, toggle, rotate, remove),
    deliveries,
  );
}

async function loadDeliveries(endpoint: Endpoint, into: HTMLElement, message: ReturnType<typeof messageSlot>): Promise<void> {
  const path = { params: { path: { endpoint_id: endpoint.id } } };
  const { data, error } = await api.GET("/v1/webhook-endpoints/{endpoint_id}/deliveries", { params: { path: { endpoint_id: endpoint.id }, query: { limit: 20 } } });
  if (!data) {
    fill(into, h("p", { class: "message error" }, problemText(error)));
    return;
  }
  const refresh = (): Promise<void> => loadDeliveries(endpoint, into, message);
  const resendFailed = h("button", { type: "button", class: "button small ghost" }, "Resend every failed delivery");
  resendFailed.addEventListener("click", async () => {
    const { data: resent, error: refused } = await api.POST("/v1/webhook-endpoints/{endpoint_id}/resend-failed", path);
    message.show(resent ? "success" : "error", resent ? `${resent.resent} deliveries queued again.` : problemText(refused));
    await refresh();
  });
  const row = (d: Delivery): HTMLElement => {
    const resend = h("button", { type: "button", class: "button small ghost", "aria-label": `Resend delivery ${d.id}` }, "Resend");
    resend.disabled = d.status === "pending";
    resend.addEventListener("click", async () => {
      const { error: refused, response } = await api.POST("/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend", {
        params: { path: { endpoint_id: endpoint.id, delivery_id: d.id } },
      });
      message.show(response.ok ? "success" : "error", response.ok ? "Delivery queued again." : problemText(refused));
      await refresh();
    });
    return h(
      "tr",
      { "data-delivery": d.id },
      h("td", null, h("code", null, d.event_type), h("br"), h("span", { class: "muted" }, d.event_id)),
      h("td", null, h("span", { class: `badge status-${d.status === "succeeded" ? "completed" : d.status === "failed" ? "canceled" : "pending"}` }, d.status)),
      h("td", { class: "num" }, d.attempts),
      h("td", null, d.response_status ?? "—", d.duration_ms !== null ? h("span", { class: "muted" }, ` ${d.duration_ms} ms`) : null),
      h("td", null, d.error ?? "", d.response_body ? h("details", null, h("summary", null, "response"), h("pre", { class: "response-body" }, d.response_body)) : null),
      h("td", { class: "wide" }, timeElement(d.last_attempt ?? d.created)),
      h("td", { class: "row-actions" }, resend),
    );
  };
  fill(
    into,
    data.data.length === 0
      ? h("p", { class: "muted" }, "No deliveries yet.")
      : h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "deliveries-table" },
            h("caption", null, "Deliveries, newest first (kept 30 days)"),
            h("thead", null, h("tr", null, ...["Event", "Status", "Attempts", "Response", "Error", "Last attempt", ""].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", null, data.data.map(row)),
          ),
        ),
    h("div", { class: "actions" }, resendFailed),
  );
}

function alertCard(): HTMLElement {
  const message = messageSlot();
  const threshold = h("input", { id: "alert-threshold", name: "threshold", type: "text", inputmode: "decimal", autocomplete: "off", placeholder: "25.00" });
  const save = h("button", { type: "submit", class: "button primary", id: "save-alert" }, "Save");
  const form = h("form", { class: "inline-form", novalidate: true }, h("div", { class: "field" }, h("label", { for: "alert-threshold" }, "Tell me when my balance goes below (USD; empty: never)"), threshold), save);
  void api.GET("/v1/balance/alert").then(({ data }) => {
    if (data?.threshold) threshold.value = data.threshold;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const value = threshold.value.trim();
      const { data, error } = await api.PUT("/v1/balance/alert", { body: { threshold: value === "" ? null : value } });
      if (data) message.show("success", data.threshold ? `balance.low is sent when your balance goes below ${usd(data.threshold)}.` : "No low-balance alert.");
      else message.show("error", problemText(error));
    } catch {
      message.show("error", problemText(null));
    } finally {
      save.disabled = false;
    }
  });
  return card("Low-balance alert", "alert-title", h("p", { class: "help" }, "Sent as the ", h("code", null, "balance.low"), " event to your webhooks and live updates, once each time the balance crosses below it."), form, message.element);
}
