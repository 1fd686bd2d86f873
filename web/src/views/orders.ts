import { api, dataOrProblem, exportButton, newIdempotencyKey, problemText, type Schemas } from "../api/client";
import type { AppContext, Page } from "../app";
import { fill, h } from "../dom";
import { exactTitle, formatMills, moneyElement, timeElement, usd } from "../format";
import { MAX_QUANTITY, MIN_QUANTITY, QUANTITY_ERROR } from "../limits";
import * as live from "../live";
import { messageSlot, PagedTable } from "../ui";

type Order = Schemas["OrderOut"];
type OrderStatus = Schemas["OrderStatus"];

const REFRESH_MS = 10_000;

const STATUS_HELP: Record<OrderStatus, string> = {
  awaiting_confirmation:
    "We have emailed the recipient a confirmation link. Work starts when they confirm; if they decline or do not answer within 72 hours, the order is canceled and refunded in full.",
  pending: "Confirmed by the recipient; waiting for a fulfilment worker.",
  in_progress: "A fulfilment worker is delivering it.",
  completed: "Delivered in full.",
  partial: "Stopped before the end; the undelivered share was refunded.",
  canceled: "Canceled; what was not delivered was refunded.",
};

/** The same checks the API makes, with its words; the API still has the last say. */
export function validateOrder(email: string, quantityText: string): { email?: string; quantity?: string } {
  const errors: { email?: string; quantity?: string } = {};
  if (email.length === 0 || email.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    errors.email = "Invalid email.";
  }
  const quantity = /^\d+$/.test(quantityText) ? Number(quantityText) : NaN;
  if (!(quantity >= MIN_QUANTITY && quantity <= MAX_QUANTITY)) errors.quantity = QUANTITY_ERROR;
  return errors;
}

function statusBadge(status: OrderStatus): HTMLElement {
  // The API's values are snake_case; people read words.
  return h("span", { class: `badge status-${status.replace("_", "-")}`, title: STATUS_HELP[status] }, status.replace("_", " "));
}

function progressBar(order: Order): HTMLElement {
  const fillBar = h("span", { class: "progress-fill" });
  fillBar.style.width = `${order.progress}%`;
  return h(
    "span",
    { class: "progress-cell" },
    h(
      "span",
      {
        class: "progress",
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": order.progress,
        "aria-label": `Progress of order ${order.id}`,
      },
      fillBar,
    ),
    h("span", { class: "progress-text" }, `${order.progress}%`),
  );
}

export function ordersPage(context: AppContext): Page {
  const notice = messageSlot();
  const cancelDialog = createCancelDialog(context, async (canceled) => {
    const refund = canceled.refund === "0.00" ? null : canceled.refund;
    notice.show(
      "success",
      refund
        ? ["Order ", h("code", null, canceled.order.id), ` canceled: ${usd(refund)} refunded.`]
        : ["Order ", h("code", null, canceled.order.id), " is being stopped; the undelivered share is refunded when its worker stops."],
    );
    await table.refresh();
    table.restoreFocus(`Cancel order ${canceled.order.id}`);
  });
  const awaitingNote = h("div", { class: "awaiting-slot" });

  const table = new PagedTable<Order, string>({
    caption: "Your orders, newest first",
    // A phone shows fewer orders a page: each is a card there.
    pageSize: window.matchMedia("(max-width: 720px)").matches ? 10 : 20,
    empty: () =>
      context.balance() === "0.00"
        ? ["No orders yet. An order is paid from your balance, which is empty: add funds first with a ", h("a", { href: "#/deposits" }, "deposit"), " or a ", h("a", { href: "#/payments" }, "coupon"), "."]
        : "No orders yet. Place your first order above.",
    columns: [
      { header: "Target", cell: (o) => h("span", { class: "target" }, h("span", { class: "email" }, o.email), h("code", { class: "order-id", title: "Order id" }, o.id)) },
      { header: "Quantity", cell: (o) => o.quantity.toLocaleString("en-US"), className: "num" },
      { header: "Price", cell: (o) => moneyElement(o.price), className: "num" },
      { header: "Status", cell: (o) => statusBadge(o.status) },
      { header: "Progress", cell: (o) => progressBar(o) },
      { header: "Time", cell: (o) => timeElement(o.created), className: "wide" },
      {
        header: "Actions",
        hideHeader: true,
        className: "row-actions",
        cell: (o) =>
          o.cancelable
            ? h(
                "button",
                { type: "button", class: "button small ghost danger", onclick: () => cancelDialog.open(o), "aria-label": `Cancel order ${o.id}` },
                "Cancel",
              )
            : null,
      },
    ],
    shown: (orders) => {
      const waiting = orders.filter((o) => o.status === "awaiting_confirmation").length;
      fill(
        awaitingNote,
        waiting > 0
          ? h(
              "p",
              { class: "message info", role: "note" },
              h("strong", null, waiting === 1 ? "1 order is awaiting confirmation. " : `${waiting} orders are awaiting confirmation. `),
              STATUS_HELP.awaiting_confirmation,
            )
          : null,
      );
    },
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/orders", { params: { query: { limit, ...cursor } } })),
  });

  const form = orderForm(context, async (order) => {
    notice.show("success", [`Order `, h("code", null, order.id), ` placed: ${usd(order.price)} debited. `, order.status === "awaiting_confirmation" ? "It waits for the recipient's confirmation." : ""]);
    await Promise.all([table.first(), context.refreshBalance()]);
  });

  // The first page once the balance is known: an empty table on an empty balance says how to
  // add funds first.
  void (context.balance() === null ? context.refreshBalance() : Promise.resolve()).finally(() => table.first());
  // Statuses and progress move while workers deliver: the live stream tells each change (the
  // table is read again), and while it is down the table is read every 10 seconds. A refresh
  // waits while the keyboard focus is in the table or the cancel dialog is open, so that nothing
  // is pulled from under the user; what it held back comes at the next event or tick.
  const quiet = (): boolean => !table.hasFocus() && !cancelDialog.element.open;
  let behind = false;
  let soon: number | undefined;
  const timer = window.setInterval(() => {
    if (document.visibilityState === "visible" && quiet() && (behind || !live.connected())) {
      behind = false;
      void table.refresh();
    }
  }, REFRESH_MS);
  const stopListening = live.onEvent((event) => {
    if (!event.type.startsWith("order.")) return;
    window.clearTimeout(soon);
    soon = window.setTimeout(() => {
      if (quiet()) void table.refresh();
      else behind = true;
    }, 150);
  });

  const element = h(
    "div",
    { class: "page" },
    h("section", { class: "card", "aria-labelledby": "new-order-title" }, h("h2", { id: "new-order-title" }, "New order"), form),
    h(
      "section",
      { class: "card", "aria-labelledby": "orders-title" },
      h("div", { class: "card-head" }, h("h2", { id: "orders-title" }, "Your orders"), exportButton("/v1/orders/export", "orders.csv", "Export all as CSV")),
      notice.element,
      awaitingNote,
      table.element,
    ),
    cancelDialog.element,
  );
  return {
    title: "Orders",
    element,
    dispose: () => {
      window.clearInterval(timer);
      window.clearTimeout(soon);
      stopListening();
    },
  };
}

function orderForm(context: AppContext, placed: (order: Order) => Promise<void>): HTMLFormElement {
  const email = h("input", { id: "order-email", name: "email", type: "email", autocomplete: "off", required: true, placeholder: "recipient@example.com", "aria-describedby": "order-email-error" });
  const quantity = h("input", {
    id: "order-quantity",
    name: "quantity",
    type: "number",
    inputmode: "numeric",
    min: MIN_QUANTITY,
    max: MAX_QUANTITY,
    step: 1,
    value: 10000,
    required: true,
    "aria-describedby": "order-quantity-help order-quantity-error",
  });
  const price = h("output", { id: "order-price", for: "order-quantity", "aria-live": "polite" });
  const emailError = h("p", { id: "order-email-error", class: "field-error" });
  const quantityError = h("p", { id: "order-quantity-error", class: "field-error" });
  const result = messageSlot();
  const submit = h("button", { type: "submit", class: "button primary" }, "Place order");
  // One idempotency key per intended order: a retry of the same order (after a lost answer)
  // cannot debit twice; any change of the form makes it a new order.
  let idempotencyKey = newIdempotencyKey();

  const updatePrice = (): void => {
    const q = /^\d+$/.test(quantity.value) ? Number(quantity.value) : NaN;
    const exact = q >= MIN_QUANTITY && q <= MAX_QUANTITY ? formatMills(q) : null;
    price.textContent = exact === null ? "—" : usd(exact);
    price.title = exact === null ? "" : exactTitle(exact);
  };
  const edited = (): void => {
    idempotencyKey = newIdempotencyKey();
    updatePrice();
    result.clear();
  };
  email.addEventListener("input", () => {
    edited();
    emailError.textContent = "";
    email.removeAttribute("aria-invalid");
  });
  quantity.addEventListener("input", () => {
    edited();
    quantityError.textContent = "";
    quantity.removeAttribute("aria-invalid");
  });
  updatePrice();

  const form = h(
    "form",
    { class: "order-form", novalidate: true, "aria-label": "New order" },
    h("div", { class: "field grow" }, h("label", { for: "order-email" }, "Target email"), email, emailError),
    h(
      "div",
      { class: "field" },
      h("label", { for: "order-quantity" }, "Quantity"),
      quantity,
      h("p", { id: "order-quantity-help", class: "help" }, `${MIN_QUANTITY.toLocaleString("en-US")}–${MAX_QUANTITY.toLocaleString("en-US")}`),
      quantityError,
    ),
    h("div", { class: "field price-field" }, h("span", { class: "label" }, "Price"), price, h("p", { class: "help" }, "quantity / 1000")),
    h("div", { class: "field actions" }, submit),
    h("div", { class: "form-result" }, result.element),
    h("p", { class: "help wide" }, "The recipient is asked to confirm by email before any work starts. Your balance is debited now; a decline, an expiry or a cancel refunds it."),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errors = validateOrder(email.value.trim(), quantity.value.trim());
    emailError.textContent = errors.email ?? "";
    quantityError.textContent = errors.quantity ?? "";
    email.toggleAttribute("aria-invalid", Boolean(errors.email));
    quantity.toggleAttribute("aria-invalid", Boolean(errors.quantity));
    if (errors.email || errors.quantity) {
      (errors.email ? email : quantity).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Placing…";
    result.clear();
    try {
      const { data, error } = await api.POST("/v1/orders", {
        body: { email: email.value.trim(), quantity: Number(quantity.value) },
        params: { header: { "Idempotency-Key": idempotencyKey } },
      });
      if (data) {
        idempotencyKey = newIdempotencyKey();
        email.value = "";
        result.clear();
        await placed(data);
      } else {
        if (error?.code === "insufficient_balance") {
          result.show("error", [problemText(error), " Add funds with a ", h("a", { href: "#/deposits" }, "deposit"), " or a ", h("a", { href: "#/payments" }, "coupon"), ", then place the order again."]);
        } else {
          result.show("error", problemText(error));
        }
        if (error?.code === "invalid_email") email.focus();
        if (error?.code === "invalid_quantity") quantity.focus();
      }
    } catch {
      result.show("error", problemText(null));
    } finally {
      submit.disabled = false;
      submit.textContent = "Place order";
      void context.refreshBalance();
    }
  });
  return form;
}

function createCancelDialog(
  context: AppContext,
  canceled: (cancellation: Schemas["OrderCancellation"]) => Promise<void>,
): { element: HTMLDialogElement; open: (order: Order) => void } {
  const text = h("p");
  const result = messageSlot();
  const confirm = h("button", { type: "button", class: "button danger" }, "Cancel order");
  const keep = h("button", { type: "button", class: "button ghost" }, "Keep it");
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": "cancel-title" },
    h("h2", { id: "cancel-title" }, "Cancel this order?"),
    text,
    result.element,
    h("div", { class: "dialog-actions" }, keep, confirm),
  );
  let current: Order | null = null;
  keep.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", async () => {
    if (!current) return;
    confirm.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/orders/{order_id}/cancel", { params: { path: { order_id: current.id } } });
      if (data) {
        dialog.close();
        await Promise.all([canceled(data), context.refreshBalance()]);
      } else {
        result.show("error", problemText(error));
      }
    } catch {
      result.show("error", problemText(null));
    } finally {
      confirm.disabled = false;
    }
  });
  return {
    element: dialog,
    open(order) {
      current = order;
      result.clear();
      fill(
        text,
        "Order ",
        h("code", null, order.id),
        ` to ${order.email}: `,
        order.status === "in_progress"
          ? "delivery stops at the worker's next report, and the undelivered share is refunded then."
          : `${usd(order.price)} is refunded now.`,
      );
      dialog.showModal();
      keep.focus();
    },
  };
}
