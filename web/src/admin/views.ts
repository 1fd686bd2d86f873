// The console's pages. Each talks only to /v1/admin (typed from the OpenAPI document) and shows
// money as the API writes it (exact decimal strings, never floats).

import { fill, h, type Child } from "../dom";
import { moneyElement, timeElement } from "../format";
import { messageSlot, PagedTable, type Column, type Cursor } from "../ui";
import { api, dataOrProblem, exportUrl, newIdempotencyKey, problemText, type Schemas } from "./client";

export interface ConsolePage {
  title: string;
  element: HTMLElement;
  dispose?: () => void;
}

export interface ConsoleContext {
  isAdmin: boolean;
}

const STATUSES = ["awaiting_confirmation", "pending", "in_progress", "completed", "partial", "canceled"] as const;

function section(title: string, ...children: Child[]): HTMLElement {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

function labelled(id: string, label: string, control: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function statusLabel(status: string): string {
  return status.replace(/_/g, " ");
}

function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge status-${status.replace(/_/g, "-")}` }, statusLabel(status));
}

function cursorQuery(cursor: Cursor<number>, limit: number): { limit: number; starting_after?: number; ending_before?: number } {
  return { limit, ...cursor };
}

// Overview -----------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

/** Bars of one series per day, as SVG attributes (no inline styles: the page's CSP forbids them). */
function barChart(days: Schemas["DayOut"][], value: (d: Schemas["DayOut"]) => number, label: string): SVGSVGElement {
  const width = days.length * 10;
  const height = 60;
  const max = Math.max(1, ...days.map(value));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("preserveAspectRatio", "none");
  days.forEach((d, i) => {
    const v = value(d);
    const barHeight = Math.round((v / max) * (height - 2));
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", String(i * 10 + 1));
    bar.setAttribute("y", String(height - barHeight));
    bar.setAttribute("width", "8");
    bar.setAttribute("height", String(barHeight));
    bar.setAttribute("fill", "#4f46e5");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${d.day}: ${v}`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

/** Cents of an exact amount, for a chart's bar heights only (never for money shown). */
function chartCents(amount: string): number {
  const [whole = "0", fraction = "0"] = amount.replace("-", "").split(".");
  return Number(whole) * 100 + Number(fraction.slice(0, 2).padEnd(2, "0"));
}

export function overviewPage(): ConsolePage {
  const element = h("div", { class: "stack" }, h("p", null, h("span", { class: "skeleton" })));
  void (async () => {
    const result = await dataOrProblem(() => api.GET("/v1/admin/overview"));
    if (typeof result === "string") {
      fill(element, h("p", { class: "message error", role: "alert" }, result));
      return;
    }
    const o = result;
    const figures: [string, Child, string][] = [
      ["Balances held", moneyElement(o.balances_held), "balances-held"],
      ["Outbox waiting", String(o.outbox_waiting), "outbox-waiting"],
      ["Oldest waiting message", o.outbox_oldest ? timeElement(o.outbox_oldest) : "none", "outbox-oldest"],
      ["Workers with a live lease", String(o.live_workers), "live-workers"],
    ];
    const totals = { deposits: 0, orders: 0 };
    for (const d of o.days) {
      totals.orders += d.orders;
      totals.deposits += chartCents(d.deposits);
    }
    fill(
      element,
      section(
        "Now",
        h("dl", { class: "figures" }, figures.map(([label, value, id]) => [h("dt", null, label), h("dd", { id }, value)])),
      ),
      section(
        "Last 30 days",
        h("h3", null, `Orders placed per day (${totals.orders} in all)`),
        barChart(o.days, (d) => d.orders, "Orders placed per day over the last 30 days"),
        h("h3", null, "Deposits per day (USD cents)"),
        barChart(o.days, (d) => chartCents(d.deposits), "Deposits per day over the last 30 days"),
        dayTable(o.days),
      ),
      section(
        "Orders by status",
        h("ul", { class: "key-list", id: "orders-by-status" }, STATUSES.map((s) => h("li", null, statusBadge(s), " ", String(o.orders_by_status[s] ?? 0)))),
        o.history_complete ? null : h("p", { class: "help", id: "history-incomplete" }, "Older history is still being summed (a second of it per visit): the ended orders count only the days summed so far. Reload to go on."),
      ),
      section(
        "Deposit address pool",
        h("ul", { class: "key-list", id: "address-pool" }, Object.entries(o.address_pool).map(([network, free]) => h("li", null, `${network}: ${free} free`))),
      ),
    );
  })();
  return { title: "Overview", element };
}

function dayTable(days: Schemas["DayOut"][]): HTMLElement {
  const rows = [...days].reverse();
  return h(
    "div",
    { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Money per day" },
    h(
      "table",
      null,
      h("caption", { class: "visually-hidden" }, "Money per day, newest first"),
      h("thead", null, h("tr", null, ["Day", "Deposits", "Bonuses", "Coupons", "Credits", "Debits", "Refunds", "Orders"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        rows.map((d) =>
          h("tr", null, h("td", { "data-label": "Day" }, d.day), [d.deposits, d.bonuses, d.coupons, d.credits, d.debits, d.refunds].map((a) => h("td", { class: "amount" }, moneyElement(a))), h("td", { "data-label": "Orders" }, String(d.orders))),
        ),
      ),
    ),
  );
}

// Customers ----------------------------------------------------------------------------------

export function customersPage(): ConsolePage {
  const query = h("input", { id: "customer-search", type: "search", autocomplete: "off", placeholder: "email or id" });
  const columns: Column<Schemas["CustomerOut"]>[] = [
    { header: "Id", cell: (c) => String(c.id) },
    { header: "Email", cell: (c) => h("a", { href: `#/customers/${c.id}`, class: "email" }, c.email) },
    { header: "Balance", cell: (c) => moneyElement(c.balance), className: "amount" },
    { header: "State", cell: (c) => c.state },
    { header: "Orders", cell: (c) => String(c.orders) },
  ];
  const table = new PagedTable<Schemas["CustomerOut"], number>({
    caption: "Customers",
    columns,
    pageSize: 20,
    empty: "No customer matches.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/customers", { params: { query: { ...cursorQuery(cursor, limit), q: query.value.trim() || undefined } } })),
  });
  const form = h("form", { class: "inline-form", role: "search", "aria-label": "Customer search" }, labelled("customer-search", "Search customers", query), h("button", { type: "submit", class: "button primary", id: "customer-search-go" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void table.first();
  });
  void table.first();
  const exportLink = h("a", { href: "/v1/admin/customers/export", class: "button small ghost", download: "customers.csv" }, "Export CSV");
  return { title: "Customers", element: h("div", { class: "stack" }, section("Find a customer", form, exportLink), h("div", { class: "card" }, table.element)) };
}

export function customerPage(accountId: number, context: ConsoleContext): ConsolePage {
  const head = h("div", { class: "stack" }, h("p", null, h("span", { class: "skeleton" })));
  const message = messageSlot();
  const reload = async (): Promise<void> => {
    const detail = await dataOrProblem(() => api.GET("/v1/admin/customers/{account_id}", { params: { path: { account_id: accountId } } }));
    if (typeof detail === "string") {
      fill(head, h("p", { class: "message error", role: "alert" }, detail));
      return;
    }
    const c = detail.customer;
    const disable = h("button", { type: "button", class: "button small ghost", id: "customer-toggle" }, c.state === "disabled" ? "Enable account" : "Disable account");
    disable.addEventListener("click", async () => {
      const call = c.state === "disabled" ? api.POST("/v1/admin/customers/{account_id}/enable", { params: { path: { account_id: accountId } } }) : api.POST("/v1/admin/customers/{account_id}/disable", { params: { path: { account_id: accountId } } });
      const { error } = await call;
      if (error) message.show("error", problemText(error));
      await reload();
    });
    const endSessions = h("button", { type: "button", class: "button small ghost", id: "end-sessions" }, "End all sessions");
    endSessions.addEventListener("click", async () => {
      const { error } = await api.POST("/v1/admin/customers/{account_id}/sessions/end", { params: { path: { account_id: accountId } } });
      message.show(error ? "error" : "success", error ? problemText(error) : "Every browser session of this customer has ended.");
      await reload();
    });
    fill(
      head,
      h("dl", { class: "figures" }, h("dt", null, "Email"), h("dd", { id: "customer-email" }, c.email), h("dt", null, "Balance"), h("dd", { id: "customer-balance" }, moneyElement(c.balance)), h("dt", null, "State"), h("dd", { id: "customer-state" }, c.state), h("dt", null, "Orders"), h("dd", null, String(c.orders)), h("dt", null, "Since"), h("dd", null, timeElement(c.created))),
      h("div", { class: "inline-form" }, disable, endSessions),
      h("h3", null, "API keys"),
      detail.api_keys.length === 0
        ? h("p", { class: "muted" }, "No API keys.")
        : h(
            "ul",
            { class: "key-list", id: "api-keys" },
            detail.api_keys.map((k) => {
              const revoke = h("button", { type: "button", class: "button small ghost", "aria-label": `Revoke key ${k.prefix}` }, "Revoke");
              revoke.disabled = k.revoked !== null;
              revoke.addEventListener("click", async () => {
                const { error } = await api.POST("/v1/admin/customers/{account_id}/api-keys/{prefix}/revoke", { params: { path: { account_id: accountId, prefix: k.prefix } } });
                if (error) message.show("error", problemText(error));
                await reload();
              });
              return h("li", null, h("code", { class: "code" }, `${k.prefix}…`), ` ${k.name} `, k.revoked ? "(revoked)" : revoke);
            }),
          ),
      h("h3", null, `Live browser sessions: ${detail.sessions.length}`),
    );
  };
  void reload();

  const adjustment = adjustmentForm(accountId, context, async () => {
    await reload();
    await payments.first();
  });
  const payments = new PagedTable<Schemas["AdminPaymentOut"], number>({
    caption: "Payments",
    columns: [
      { header: "When", cell: (p) => timeElement(p.created) },
      { header: "Kind", cell: (p) => p.kind },
      { header: "Amount", cell: (p) => moneyElement(p.amount, { signed: true }), className: "amount" },
      { header: "Note", cell: (p) => p.description ?? p.email ?? p.coupon ?? "" },
    ],
    pageSize: 10,
    empty: "No payments yet.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/customers/{account_id}/payments", { params: { path: { account_id: accountId }, query: cursorQuery(cursor, limit) } })),
  });
  void payments.first();
  const orders = ordersTable({ account_id: accountId }, message);
  void orders.first();
  const deposits = new PagedTable<Schemas["AdminDepositOut"], number>({
    caption: "Deposits",
    columns: [
      { header: "When", cell: (d) => timeElement(d.created) },
      { header: "Network", cell: (d) => d.network ?? d.processor },
      { header: "Amount", cell: (d) => moneyElement(d.amount), className: "amount" },
      { header: "Status", cell: (d) => d.status },
      { header: "Transaction", cell: (d) => h("span", { class: "hash" }, d.tx_hash ?? "") },
    ],
    pageSize: 10,
    empty: "No deposits yet.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/customers/{account_id}/deposits", { params: { path: { account_id: accountId }, query: cursorQuery(cursor, limit) } })),
  });
  void deposits.first();
  const consents = h("div", null);
  void (async () => {
    const result = await dataOrProblem(() => api.GET("/v1/admin/customers/{account_id}/consents", { params: { path: { account_id: accountId } } }));
    fill(consents, typeof result === "string" ? result : result.data.length === 0 ? h("p", { class: "muted" }, "No recipients yet.") : h("ul", { class: "key-list" }, result.data.map((c) => h("li", null, h("span", { class: "email" }, c.email), ` ${c.status}`))));
  })();
  return {
    title: `Customer ${accountId}`,
    element: h(
      "div",
      { class: "stack" },
      h("p", null, h("a", { href: "#/customers" }, "← Customers")),
      message.element,
      section("Account", head),
      context.isAdmin ? section("Adjust the balance", adjustment) : null,
      section("Payments", h("a", { href: `/v1/admin/customers/${accountId}/payments/export`, class: "button small ghost", download: `payments-${accountId}.csv` }, "Export payments as CSV"), payments.element),
      section("Orders", orders.element),
      section("Deposits", deposits.element),
      section("Recipients", consents),
    ),
  };
}

function adjustmentForm(accountId: number, context: ConsoleContext, done: () => Promise<void>): HTMLElement {
  const message = messageSlot();
  const direction = h("select", { id: "adjust-direction" }, h("option", { value: "credit" }, "Credit (add)"), h("option", { value: "debit" }, "Debit (take)"));
  const amount = h("input", { id: "adjust-amount", inputmode: "decimal", required: true, placeholder: "10.00", pattern: "[0-9]+(\\.[0-9]{1,3})?" });
  const reason = h("input", { id: "adjust-reason", required: true, "aria-describedby": "adjust-reason-help" });
  const submit = h("button", { type: "submit", class: "button primary", id: "adjust-submit" }, "Apply");
  let key = newIdempotencyKey();
  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-label": "Adjust the balance" },
    labelled("adjust-direction", "Direction", direction),
    labelled("adjust-amount", "Amount (USD)", amount),
    h("div", { class: "field" }, h("label", { for: "adjust-reason" }, "Reason"), reason, h("p", { id: "adjust-reason-help", class: "help" }, "Required: kept with the payment and in the audit log.")),
    submit,
    message.element,
  );
  form.addEventListener("input", () => {
    key = newIdempotencyKey(); // a changed form is a new request; a retry of the same one reuses its key
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!context.isAdmin) return;
    const text = amount.value.trim();
    const normalized = /^\d+$/.test(text) ? `${text}.00` : /^\d+\.\d$/.test(text) ? `${text}0` : text;
    submit.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/admin/customers/{account_id}/adjustments", {
        params: { path: { account_id: accountId }, header: { "Idempotency-Key": key } },
        body: { direction: direction.value as "credit" | "debit", amount: normalized, reason: reason.value },
      });
      if (data) {
        message.show("success", `Done: ${data.payment.kind} of ${data.payment.amount.replace("-", "")} USD. New balance ${data.balance} USD.`);
        amount.value = "";
        reason.value = "";
        key = newIdempotencyKey();
        await done();
      } else {
        message.show("error", problemText(error));
      }
    } catch {
      message.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// Orders -------------------------------------------------------------------------------------

type OrderQuery = { status?: (typeof STATUSES)[number]; recipient?: string; account_id?: number; stuck?: boolean; created_after?: string; created_before?: string };

/** A date input's day as the start of that day in UTC (ISO 8601), or undefined. */
function dayStart(input: HTMLInputElement, plusDays = 0): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(input.value)) return undefined;
  const day = new Date(`${input.value}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + plusDays);
  return day.toISOString();
}

function ordersTable(filters: OrderQuery | (() => OrderQuery), message: ReturnType<typeof messageSlot>): PagedTable<Schemas["AdminOrderOut"], string> {
  const current = (): OrderQuery => (typeof filters === "function" ? filters() : filters);
  const table: PagedTable<Schemas["AdminOrderOut"], string> = new PagedTable<Schemas["AdminOrderOut"], string>({
    caption: "Orders",
    columns: [
      { header: "Order", cell: (o) => h("code", { class: "order-id" }, o.id) },
      { header: "Customer", cell: (o) => h("a", { href: `#/customers/${o.account_id}` }, String(o.account_id)) },
      { header: "Recipient", cell: (o) => h("span", { class: "email" }, o.email) },
      { header: "Quantity", cell: (o) => String(o.quantity) },
      { header: "Price", cell: (o) => moneyElement(o.price), className: "amount" },
      { header: "Status", cell: (o) => [statusBadge(o.status), o.cancel_requested ? " (cancel requested)" : ""] },
      { header: "Progress", cell: (o) => `${o.progress}%` },
      { header: "Placed", cell: (o) => timeElement(o.created) },
      {
        header: "Actions",
        hideHeader: true,
        cell: (o) => {
          if (!o.cancelable) return "";
          const cancel = h("button", { type: "button", class: "button small ghost", "aria-label": `Cancel order ${o.id}` }, "Cancel");
          cancel.addEventListener("click", async () => {
            cancel.disabled = true;
            const { data, error } = await api.POST("/v1/admin/orders/{order_id}/cancel", { params: { path: { order_id: o.id } } });
            message.show(data ? "success" : "error", data ? `Order ${o.id}: ${statusLabel(data.order.status)}, refunded ${data.refund} USD.` : problemText(error));
            await table.refresh();
          });
          return cancel;
        },
      },
    ],
    pageSize: 20,
    empty: "No orders match.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/orders", { params: { query: { ...current(), limit, ...cursor } } })),
  });
  return table;
}

export function ordersPage(context: ConsoleContext): ConsolePage {
  void context;
  const message = messageSlot();
  const status = h("select", { id: "orders-status" }, h("option", { value: "" }, "Any status"), STATUSES.map((s) => h("option", { value: s }, statusLabel(s))));
  const recipient = h("input", { id: "orders-recipient", type: "email", autocomplete: "off" });
  const account = h("input", { id: "orders-account", inputmode: "numeric", autocomplete: "off" });
  const stuck = h("input", { id: "orders-stuck", type: "checkbox" });
  const from = h("input", { id: "orders-from", type: "date" });
  const to = h("input", { id: "orders-to", type: "date" });
  const filters = (): OrderQuery => ({
    created_after: dayStart(from),
    created_before: dayStart(to, 1),
    status: (status.value || undefined) as OrderQuery["status"],
    recipient: recipient.value.trim() || undefined,
    account_id: /^\d+$/.test(account.value.trim()) ? Number(account.value.trim()) : undefined,
    stuck: stuck.checked || undefined,
  });
  const table = ordersTable(filters, message);
  const exportLink = h("a", { href: "/v1/admin/orders/export", class: "button small ghost", id: "orders-export", download: "orders.csv" }, "Export CSV");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Filter orders" },
    labelled("orders-status", "Status", status),
    labelled("orders-recipient", "Recipient", recipient),
    labelled("orders-account", "Customer id", account),
    labelled("orders-from", "Placed from (UTC)", from),
    labelled("orders-to", "Placed until (UTC)", to),
    h("div", { class: "field" }, h("label", { for: "orders-stuck" }, stuck, " Stuck only")),
    h("button", { type: "submit", class: "button primary", id: "orders-filter" }, "Show"),
  );
  const apply = (): void => {
    exportLink.setAttribute("href", exportUrl("/v1/admin/orders/export", filters()));
    void table.first();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  apply();
  return { title: "Orders", element: h("div", { class: "stack" }, section("Filter", form, exportLink), message.element, h("div", { class: "card" }, table.element)) };
}

// Deposits -----------------------------------------------------------------------------------

export function depositsPage(context: ConsoleContext): ConsolePage {
  const message = messageSlot();
  const list = h("div", { id: "unmatched" }, h("span", { class: "skeleton" }));
  const reload = async (): Promise<void> => {
    const result = await dataOrProblem(() => api.GET("/v1/admin/deposits/unmatched"));
    if (typeof result === "string") {
      fill(list, h("p", { class: "message error" }, result));
      return;
    }
    if (result.data.length === 0) {
      fill(list, h("p", { class: "muted" }, "No unmatched deposits."));
      return;
    }
    fill(
      list,
      h(
        "ul",
        { class: "key-list" },
        result.data.map((d) => {
          const email = h("input", { id: `assign-${d.id}`, type: "email", autocomplete: "off", required: true });
          const assign = h("button", { type: "submit", class: "button small primary" }, "Assign");
          const form = h("form", { class: "inline-form", "aria-label": `Assign deposit ${d.id}` }, labelled(`assign-${d.id}`, `Customer email for deposit ${d.id}`, email), assign);
          form.addEventListener("submit", async (event) => {
            event.preventDefault();
            const { data, error } = await api.POST("/v1/admin/deposits/{deposit_id}/assign", { params: { path: { deposit_id: d.id } }, body: { email: email.value.trim() } });
            message.show(data ? "success" : "error", data ? `Deposit ${d.id} credited to customer ${data.account_id}.` : problemText(error));
            await reload();
          });
          return h("li", null, h("p", null, `#${d.id} · `, moneyElement(d.amount), ` · ${d.network ?? d.processor} · `, h("span", { class: "hash" }, d.address ?? ""), " · ", timeElement(d.created)), context.isAdmin ? form : null);
        }),
      ),
    );
  };
  void reload();
  return { title: "Deposits", element: h("div", { class: "stack" }, message.element, section("Unmatched deposits", list), processorEvents()) };
}

// Audit log ----------------------------------------------------------------------------------

export function auditPage(): ConsolePage {
  const actor = h("input", { id: "audit-actor", autocomplete: "off" });
  const action = h("input", { id: "audit-action", autocomplete: "off", placeholder: "payment." });
  const objectType = h("input", { id: "audit-object-type", autocomplete: "off" });
  const objectId = h("input", { id: "audit-object-id", autocomplete: "off" });
  const since = h("input", { id: "audit-since", type: "date" });
  const until = h("input", { id: "audit-until", type: "date" });
  const filters = (): Record<string, string | undefined> => ({
    since: dayStart(since),
    until: dayStart(until, 1),
    actor: actor.value.trim() || undefined,
    action: action.value.trim() || undefined,
    object_type: objectType.value.trim() || undefined,
    object_id: objectId.value.trim() || undefined,
  });
  const table = new PagedTable<Schemas["AuditEntryOut"], number>({
    caption: "Audit log",
    columns: [
      { header: "When", cell: (e) => timeElement(e.created) },
      { header: "Who", cell: (e) => e.actor },
      { header: "Action", cell: (e) => h("code", { class: "code" }, e.action) },
      { header: "Object", cell: (e) => (e.object_type ? `${e.object_type} ${e.object_id ?? ""}` : "") },
      { header: "Change", cell: (e) => [e.before ? `${JSON.stringify(e.before)} → ` : "", e.after ? JSON.stringify(e.after) : ""] },
      { header: "Reason", cell: (e) => e.reason ?? "" },
    ],
    pageSize: 25,
    empty: "Nothing recorded matches.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/audit", { params: { query: { ...filters(), ...cursorQuery(cursor, limit) } } })),
  });
  const exportLink = h("a", { href: "/v1/admin/audit/export", class: "button small ghost", id: "audit-export", download: "audit.csv" }, "Export CSV");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Filter the audit log" },
    labelled("audit-actor", "Who", actor),
    labelled("audit-action", "Action", action),
    labelled("audit-object-type", "Object type", objectType),
    labelled("audit-object-id", "Object id", objectId),
    labelled("audit-since", "From (UTC)", since),
    labelled("audit-until", "Until (UTC)", until),
    h("button", { type: "submit", class: "button primary" }, "Show"),
  );
  const apply = (): void => {
    exportLink.setAttribute("href", exportUrl("/v1/admin/audit/export", filters()));
    void table.first();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  apply();
  return { title: "Audit log", element: h("div", { class: "stack" }, section("Filter", form, exportLink), h("div", { class: "card" }, table.element)) };
}

// Operators ----------------------------------------------------------------------------------

export function operatorsPage(): ConsolePage {
  const message = messageSlot();
  const list = h("div", { id: "operators" });
  const reload = async (): Promise<void> => {
    const result = await dataOrProblem(() => api.GET("/v1/admin/operators"));
    if (typeof result === "string") {
      fill(list, h("p", { class: "message error" }, result));
      return;
    }
    fill(
      list,
      h(
        "ul",
        { class: "key-list" },
        result.data.map((o) => {
          const toggle = h("button", { type: "button", class: "button small ghost", "aria-label": `${o.disabled ? "Enable" : "Disable"} ${o.email}` }, o.disabled ? "Enable" : "Disable");
          toggle.addEventListener("click", async () => {
            const { error } = await api.PATCH("/v1/admin/operators/{operator_id}", { params: { path: { operator_id: o.id } }, body: { disabled: !o.disabled } });
            if (error) message.show("error", problemText(error));
            await reload();
          });
          const role = h("button", { type: "button", class: "button small ghost", "aria-label": `${o.role === "admin" ? "Make support" : "Make admin"}: ${o.email}` }, o.role === "admin" ? "Make support" : "Make admin");
          role.addEventListener("click", async () => {
            const { error } = await api.PATCH("/v1/admin/operators/{operator_id}", { params: { path: { operator_id: o.id } }, body: { role: o.role === "admin" ? "support" : "admin" } });
            if (error) message.show("error", problemText(error));
            await reload();
          });
          return h("li", null, h("span", { class: "email" }, o.email), ` ${o.role}${o.disabled ? ", disabled" : ""}${o.totp_enrolled ? "" : ", authenticator not set up"} `, role, toggle);
        }),
      ),
    );
  };
  const email = h("input", { id: "new-operator-email", type: "email", autocomplete: "off", required: true });
  const role = h("select", { id: "new-operator-role" }, h("option", { value: "support" }, "support"), h("option", { value: "admin" }, "admin"));
  const form = h("form", { class: "inline-form", "aria-label": "Create an operator" }, labelled("new-operator-email", "Email", email), labelled("new-operator-role", "Role", role), h("button", { type: "submit", class: "button primary" }, "Create"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { data, error } = await api.POST("/v1/admin/operators", { body: { email: email.value.trim(), role: role.value as "admin" | "support" } });
    if (data) {
      message.show("success", ["Created. Hand this one-time link to ", data.operator.email, " (shown only now): ", h("code", { class: "code", id: "operator-link" }, data.link)]);
      email.value = "";
      await reload();
    } else {
      message.show("error", problemText(error));
    }
  });
  void reload();
  return { title: "Operators", element: h("div", { class: "stack" }, message.element, section("Create an operator", form), section("Operators", list)) };
}

// Recipients ---------------------------------------------------------------------------------

export function recipientsPage(context: ConsoleContext): ConsolePage {
  const message = messageSlot();
  const email = h("input", { id: "recipient-email", type: "email", autocomplete: "off", required: true });
  const result = h("div", { id: "recipient-state" });
  const look = async (): Promise<void> => {
    const value = email.value.trim();
    if (!value) return;
    const state = await dataOrProblem(() => api.GET("/v1/admin/recipients", { params: { query: { email: value } } }));
    if (typeof state === "string") {
      fill(result, h("p", { class: "message error" }, state));
      return;
    }
    fill(
      result,
      h("p", { id: "recipient-opt-out" }, state.opted_out ? `Opted out (${state.opted_out_by === "recipient" ? "by the recipient: final" : "by an operator"}).` : "Not opted out."),
      state.consents.length === 0
        ? h("p", { class: "muted" }, "No account has ordered for this address.")
        : h(
            "ul",
            { class: "key-list" },
            state.consents.map((c, i) => {
              const resend = h("button", { type: "button", class: "button small ghost", "aria-label": `Resend the request of customer ${state.accounts[i]}` }, "Resend");
              resend.addEventListener("click", async () => {
                const { data, error } = await api.POST("/v1/admin/consents/{consent_id}/resend", { params: { path: { consent_id: c.id } } });
                message.show(data ? "success" : "error", data ? (data.queued ? "The message is queued." : "This address got a message within the interval: it goes when the interval ends.") : problemText(error));
              });
              return h("li", null, h("a", { href: `#/customers/${state.accounts[i]}` }, `Customer ${state.accounts[i]}`), ` ${c.status}`, c.status === "requested" ? resend : null);
            }),
          ),
      context.isAdmin && !state.opted_out ? suppressButton(state.email, message, look) : null,
    );
  };
  const form = h("form", { class: "inline-form", role: "search", "aria-label": "Look up a recipient" }, labelled("recipient-email", "Recipient address", email), h("button", { type: "submit", class: "button primary" }, "Look up"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void look();
  });
  return { title: "Recipients", element: h("div", { class: "stack" }, message.element, section("Look up an address", form, result)) };
}

function suppressButton(email: string, message: ReturnType<typeof messageSlot>, after: () => Promise<void>): HTMLElement {
  const button = h("button", { type: "button", class: "button small ghost", id: "suppress" }, "Suppress this address");
  button.addEventListener("click", async () => {
    const { error } = await api.POST("/v1/admin/suppressions", { body: { email } });
    message.show(error ? "error" : "success", error ? problemText(error) : `${email} is suppressed: no message and no order to it from any account.`);
    await after();
  });
  return button;
}

// The catalogue: coupons, bonus tiers, suppressions, worker tokens (admin) -------------------

export function cataloguePage(): ConsolePage {
  const message = messageSlot();
  const coupons = h("div", { id: "coupons" });
  const tiers = h("div", { id: "tiers" });
  const suppressions = h("div", { id: "suppressions" });
  const workers = h("div", { id: "workers" });
  const load = async (): Promise<void> => {
    const [c, t, s, w] = await Promise.all([
      dataOrProblem(() => api.GET("/v1/admin/coupons")),
      dataOrProblem(() => api.GET("/v1/admin/bonus-tiers")),
      dataOrProblem(() => api.GET("/v1/admin/suppressions")),
      dataOrProblem(() => api.GET("/v1/admin/workers")),
    ]);
    fill(coupons, typeof c === "string" ? c : h("ul", { class: "key-list" }, c.data.map((x) => {
      const disable = h("button", { type: "button", class: "button small ghost", "aria-label": `Disable coupon ${x.code}` }, "Disable");
      disable.addEventListener("click", async () => {
        const { error } = await api.POST("/v1/admin/coupons/{code}/disable", { params: { path: { code: x.code } } });
        if (error) message.show("error", problemText(error));
        await load();
      });
      return h("li", null, h("code", { class: "code" }, x.code), " ", moneyElement(x.amount), ` · ${x.redemptions}${x.max_redemptions ? ` of ${x.max_redemptions}` : ""} redeemed${x.disabled ? " · disabled" : ""}`, x.disabled ? null : disable);
    })));
    fill(tiers, typeof t === "string" ? t : h("ul", { class: "key-list" }, t.data.map((x) => {
      const remove = h("button", { type: "button", class: "button small ghost", "aria-label": `Remove the tier at ${x.threshold} USD` }, "Remove");
      remove.addEventListener("click", async () => {
        const { error } = await api.DELETE("/v1/admin/bonus-tiers/{threshold}", { params: { path: { threshold: x.threshold } } });
        if (error) message.show("error", problemText(error));
        await load();
      });
      return h("li", null, `From ${x.threshold} USD: ${x.percent}%`, remove);
    })));
    fill(suppressions, typeof s === "string" ? s : s.data.length === 0 ? h("p", { class: "muted" }, "No suppressed address.") : h("ul", { class: "key-list" }, s.data.map((x) => {
      if (x.source !== "operator") return h("li", null, h("span", { class: "email" }, x.email), " (the recipient's own opt-out: final)");
      const remove = h("button", { type: "button", class: "button small ghost", "aria-label": `Remove ${x.email} from the list` }, "Remove");
      remove.addEventListener("click", async () => {
        const { error } = await api.DELETE("/v1/admin/suppressions", { params: { query: { email: x.email } } });
        if (error) message.show("error", problemText(error));
        await load();
      });
      return h("li", null, h("span", { class: "email" }, x.email), " (an operator's)", remove);
    })));
    fill(workers, typeof w === "string" ? w : h("ul", { class: "key-list" }, w.data.map((x) => {
      const revoke = h("button", { type: "button", class: "button small ghost", "aria-label": `Revoke worker ${x.name}` }, "Revoke");
      revoke.addEventListener("click", async () => {
        const { error } = await api.POST("/v1/admin/workers/{name}/revoke", { params: { path: { name: x.name } } });
        if (error) message.show("error", problemText(error));
        await load();
      });
      return h("li", null, h("code", { class: "code" }, x.name), ` ${x.prefix}…${x.revoked ? " · revoked" : ""}`, x.revoked ? null : revoke);
    })));
  };

  const couponCode = h("input", { id: "coupon-new-code", autocomplete: "off", required: true, maxlength: 64 });
  const couponAmount = h("input", { id: "coupon-new-amount", inputmode: "decimal", required: true, placeholder: "10.00" });
  const couponForm = h("form", { class: "inline-form", "aria-label": "Create a coupon" }, labelled("coupon-new-code", "Code", couponCode), labelled("coupon-new-amount", "Amount (USD)", couponAmount), h("button", { type: "submit", class: "button primary" }, "Create coupon"));
  couponForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { error } = await api.POST("/v1/admin/coupons", { body: { code: couponCode.value.trim(), amount: money(couponAmount.value) } });
    message.show(error ? "error" : "success", error ? problemText(error) : "Coupon created.");
    await load();
  });
  const tierThreshold = h("input", { id: "tier-threshold", inputmode: "decimal", required: true, placeholder: "100.00" });
  const tierPercent = h("input", { id: "tier-percent", inputmode: "decimal", required: true, placeholder: "5" });
  const tierForm = h("form", { class: "inline-form", "aria-label": "Set a bonus tier" }, labelled("tier-threshold", "From (USD)", tierThreshold), labelled("tier-percent", "Bonus (%)", tierPercent), h("button", { type: "submit", class: "button primary" }, "Set tier"));
  tierForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { error } = await api.PUT("/v1/admin/bonus-tiers", { body: { threshold: money(tierThreshold.value), percent: tierPercent.value.trim() } });
    message.show(error ? "error" : "success", error ? problemText(error) : "Tier set.");
    await load();
  });
  const suppressEmail = h("input", { id: "suppress-email", type: "email", autocomplete: "off", required: true });
  const suppressForm = h("form", { class: "inline-form", "aria-label": "Suppress an address" }, labelled("suppress-email", "Address", suppressEmail), h("button", { type: "submit", class: "button primary" }, "Suppress"));
  suppressForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { error } = await api.POST("/v1/admin/suppressions", { body: { email: suppressEmail.value.trim() } });
    message.show(error ? "error" : "success", error ? problemText(error) : "Suppressed.");
    await load();
  });
  const workerName = h("input", { id: "worker-name", autocomplete: "off", required: true, maxlength: 64 });
  const workerForm = h("form", { class: "inline-form", "aria-label": "Create a worker token" }, labelled("worker-name", "Worker name", workerName), h("button", { type: "submit", class: "button primary" }, "Create token"));
  workerForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { data, error } = await api.POST("/v1/admin/workers", { body: { name: workerName.value.trim() } });
    message.show(data ? "success" : "error", data ? ["Token for ", data.worker.name, " (shown only now): ", h("code", { class: "code secret", id: "worker-token" }, data.token)] : problemText(error));
    await load();
  });
  void load();
  return {
    title: "Catalogue",
    element: h(
      "div",
      { class: "stack" },
      message.element,
      section("Coupons", couponForm, coupons),
      section("Bonus tiers", tierForm, tiers),
      section("Suppression list", suppressForm, suppressions),
      section("Worker tokens", workerForm, workers),
    ),
  };
}

/** "10" or "10.5" as the API writes amounts ("10.00", "10.50"); anything else as typed (the API says what is wrong). */
function money(text: string): string {
  const value = text.trim();
  if (/^\d+$/.test(value)) return `${value}.00`;
  if (/^\d+\.\d$/.test(value)) return `${value}0`;
  return value;
}

// Processor events (on the deposits page) ----------------------------------------------------

export function processorEvents(): HTMLElement {
  const outcome = h("select", { id: "events-outcome" }, h("option", { value: "" }, "Any outcome"), ["credited", "unmatched", "duplicate", "not_final", "refused"].map((o) => h("option", { value: o }, o.replace("_", " "))));
  const table = new PagedTable<Schemas["ProcessorEventOut"], number>({
    caption: "Processor events",
    columns: [
      { header: "When", cell: (e) => timeElement(e.created) },
      { header: "Processor", cell: (e) => e.processor },
      { header: "Event", cell: (e) => h("span", { class: "hash" }, e.external_id ?? "") },
      { header: "Outcome", cell: (e) => e.outcome.replace("_", " ") },
      { header: "Deposit", cell: (e) => (e.deposit_id ? String(e.deposit_id) : "") },
      { header: "Detail", cell: (e) => e.detail ?? "" },
    ],
    pageSize: 20,
    empty: "No processor event yet.",
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/admin/deposits/events", { params: { query: { ...cursorQuery(cursor, limit), outcome: (outcome.value || undefined) as "credited" | "unmatched" | "duplicate" | "not_final" | "refused" | undefined } } })),
  });
  outcome.addEventListener("change", () => void table.first());
  void table.first();
  return section("Processor events", labelled("events-outcome", "Outcome", outcome), table.element);
}
