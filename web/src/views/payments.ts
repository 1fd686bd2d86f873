import { api, dataOrProblem, exportButton, problemText, type Schemas } from "../api/client";
import type { AppContext, Page } from "../app";
import { h } from "../dom";
import { moneyElement, timeElement, usd } from "../format";
import { messageSlot, PagedTable } from "../ui";

type Payment = Schemas["PaymentOut"];

/** One line that says what a payment was, by its kind. */
export function describePayment(payment: Payment): string {
  switch (payment.kind) {
    case "deposit":
      return payment.network ? `Deposit on ${payment.network}` : "Deposit";
    case "bonus":
      return payment.network ? `Bonus on a ${payment.network} deposit` : "Deposit bonus";
    case "coupon":
      return `Coupon ${payment.coupon ?? ""}`.trim();
    case "order":
      return `Order ${payment.order_id ?? ""}${payment.email ? ` to ${payment.email}` : ""}`;
    case "refund":
      return `Refund of order ${payment.order_id ?? ""}`.trim();
    case "credit":
      return payment.description ? `Top-up: ${payment.description}` : "Top-up";
    case "debit":
      return payment.description ? `Correction: ${payment.description}` : "Correction";
  }
}

export function paymentsPage(context: AppContext): Page {
  const table = new PagedTable<Payment, number>({
    caption: "Your payments, newest first",
    pageSize: 20,
    empty: "No payments yet.",
    columns: [
      { header: "Amount", className: "num", cell: (p) => h("span", { class: p.amount.startsWith("-") ? "amount negative" : "amount positive" }, moneyElement(p.amount, { signed: true })) },
      { header: "Description", cell: (p) => describePayment(p) },
      { header: "Time", cell: (p) => timeElement(p.created) },
    ],
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/payments", { params: { query: { limit, ...cursor } } })),
  });
  void table.first();

  const code = h("input", { id: "coupon-code", name: "code", type: "text", autocomplete: "off", spellcheck: "false", required: true, placeholder: "WELCOME10", maxlength: 64 });
  const submit = h("button", { type: "submit", class: "button primary" }, "Redeem");
  const result = messageSlot();
  const form = h(
    "form",
    { class: "coupon-form", novalidate: true, "aria-label": "Redeem a coupon" },
    h("div", { class: "field grow" }, h("label", { for: "coupon-code" }, "Coupon code"), code),
    h("div", { class: "field actions" }, submit),
    h("div", { class: "form-result" }, result.element),
  );
  code.addEventListener("input", () => result.clear());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = code.value.trim();
    if (!value) {
      result.show("error", "Enter a coupon code.");
      code.focus();
      return;
    }
    submit.disabled = true;
    try {
      const { data, error } = await api.POST("/v1/coupons/redeem", { body: { code: value } });
      if (data) {
        result.show("success", `Coupon ${data.code} redeemed: ${usd(data.amount)} added to your balance.`);
        code.value = "";
        await Promise.all([table.first(), context.refreshBalance()]);
      } else {
        result.show("error", problemText(error));
        code.focus();
      }
    } catch {
      result.show("error", problemText(null));
    } finally {
      submit.disabled = false;
    }
  });

  const element = h(
    "div",
    { class: "page" },
    h("section", { class: "card", "aria-labelledby": "coupon-title" }, h("h2", { id: "coupon-title" }, "Redeem a coupon"), form),
    h("section", { class: "card", "aria-labelledby": "payments-title" }, h("h2", { id: "payments-title" }, "Your payments"), h("p", { class: "help" }, "Every change of your balance: deposits, bonuses, coupons and refunds add, orders subtract."), exportButton("/v1/payments/export", "payments.csv", "Export all as CSV"), table.element),
  );
  return { title: "Payments", element };
}
