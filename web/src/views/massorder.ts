import { api, newIdempotencyKey, problemText, type Schemas } from "../api/client";
import type { AppContext, Page } from "../app";
import { fill, h } from "../dom";
import { exactTitle, formatMills, usd } from "../format";
import { BATCH_LINES } from "../limits";
import { amountToMills, parseMassLines, toCsv, type MassLine } from "../massorder";
import { messageSlot } from "../ui";
import { validateOrder } from "./orders";

type BatchOut = Schemas["OrderBatchOut"];
type BatchResult = Schemas["OrderBatchResult"];

/** Lines one mass order of the dashboard takes: sent as consecutive batches of `BATCH_LINES`. */
const MAX_FORM_LINES = 1000;

interface Checked extends MassLine {
  /** Why the line is not sent (the dashboard's check); the API still decides every line it gets. */
  error?: string;
  priceMills?: number;
}

interface Outcome {
  line: Checked;
  result?: BatchResult;
}

function check(line: MassLine): Checked {
  if (line.unreadable) return { ...line, error: "Write the line as: email quantity" };
  const errors = validateOrder(line.email, line.quantity);
  const error = errors.email ?? errors.quantity;
  return error ? { ...line, error } : { ...line, priceMills: Number(line.quantity) };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function priceCell(mills: number | undefined): HTMLElement | string {
  if (mills === undefined) return "—";
  const amount = formatMills(mills);
  return h("span", { class: "money", title: exactTitle(amount) }, usd(amount));
}

export function massOrderPage(context: AppContext): Page {
  const lines = h("textarea", {
    id: "mass-lines",
    name: "lines",
    rows: 8,
    spellcheck: false,
    placeholder: "alice@example.com 1000\nbob@example.com|2500\ncarol@example.com,750",
    "aria-describedby": "mass-lines-help",
  });
  const file = h("input", { id: "mass-file", type: "file", accept: ".csv,text/csv,text/plain" });
  const formMessage = messageSlot();
  const preview = h("div", { class: "mass-preview" });
  const outcome = h("div", { class: "mass-outcome" });
  let checked: Checked[] = [];
  // One idempotency key per batch: pressing Place again after a lost answer, or previewing the
  // same lines again first, replays what was placed instead of placing it twice. Changed lines,
  // or the same lines once they were all placed, are a new mass order with new keys.
  let keys: string[] = [];
  let nonce = newIdempotencyKey();
  let nonceFor: string | null = null;

  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    lines.value = await chosen.text();
    file.value = "";
    showPreview();
  });

  const showPreview = (): void => {
    fill(outcome);
    formMessage.clear();
    const parsed = parseMassLines(lines.value);
    if (parsed.length === 0) {
      fill(preview);
      formMessage.show("error", "Paste one order per line (email and quantity), or choose a CSV file.");
      return;
    }
    if (parsed.length > MAX_FORM_LINES) {
      fill(preview);
      formMessage.show("error", `At most ${MAX_FORM_LINES.toLocaleString("en-US")} lines at once: this has ${parsed.length.toLocaleString("en-US")}.`);
      return;
    }
    checked = parsed.map(check);
    const ready = checked.filter((l) => !l.error);
    if (nonceFor !== lines.value) {
      nonce = newIdempotencyKey();
      nonceFor = lines.value;
    }
    keys = chunks(ready, BATCH_LINES).map((_, index) => `mass-${nonce}-${index}`);
    const totalMills = ready.reduce((sum, l) => sum + (l.priceMills ?? 0), 0);
    const balance = context.balance();
    const balanceMills = balance === null ? null : amountToMills(balance);
    const covered = balanceMills !== null && BigInt(totalMills) <= balanceMills;
    const place = h("button", { type: "button", class: "button primary", disabled: ready.length === 0 }, ready.length === 1 ? "Place 1 order" : `Place ${ready.length} orders`);
    place.addEventListener("click", () => void placeAll(ready, place));
    const skipped = checked.length - ready.length;
    fill(
      preview,
      h("h3", null, "Preview"),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "mass-table", "aria-label": "Preview of the mass order" },
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Line"), h("th", { scope: "col" }, "Email"), h("th", { scope: "col", class: "num" }, "Quantity"), h("th", { scope: "col", class: "num" }, "Price"), h("th", { scope: "col" }, "Check"))),
          h(
            "tbody",
            null,
            ...checked.map((l) =>
              h(
                "tr",
                { class: l.error ? "line-error" : "" },
                h("td", { class: "num" }, String(l.number)),
                h("td", null, l.email),
                h("td", { class: "num" }, l.quantity),
                h("td", { class: "num" }, priceCell(l.priceMills)),
                h("td", null, l.error ? h("span", { class: "field-error" }, l.error) : "OK"),
              ),
            ),
          ),
        ),
      ),
      h(
        "p",
        { class: "mass-summary", id: "mass-summary" },
        `${ready.length} ${ready.length === 1 ? "order" : "orders"}, total `,
        priceCell(totalMills),
        skipped > 0 ? `; ${skipped} ${skipped === 1 ? "line has" : "lines have"} an error and will not be sent.` : ".",
        " ",
        balance === null
          ? ""
          : covered
            ? h("span", { class: "covered" }, `Your balance (${usd(balance)}) covers it.`)
            : h("strong", { class: "not-covered" }, `Your balance (${usd(balance)}) does not cover it: the lines it no longer covers will be refused. Add funds first with a `, h("a", { href: "#/deposits" }, "deposit"), " or a ", h("a", { href: "#/payments" }, "coupon"), "."),
      ),
      h("div", { class: "dialog-actions" }, place),
    );
    place.focus();
  };

  const placeAll = async (ready: Checked[], button: HTMLButtonElement): Promise<void> => {
    button.disabled = true;
    button.textContent = "Placing…";
    formMessage.clear();
    const results = new Map<Checked, BatchResult>();
    let charged = 0n;
    let failure: string | null = null;
    const batches = chunks(ready, BATCH_LINES);
    for (const [index, batch] of batches.entries()) {
      try {
        const { data, error } = await api.POST("/v1/orders/batch", {
          body: { orders: batch.map((l) => ({ email: l.email, quantity: Number(l.quantity) })) },
          params: { header: { "Idempotency-Key": keys[index] ?? newIdempotencyKey() } },
        });
        if (!data) {
          failure = problemText(error);
          break;
        }
        charged += amountToMills((data as BatchOut).charged) ?? 0n;
        (data as BatchOut).results.forEach((result, i) => {
          const line = batch[i];
          if (line) results.set(line, result);
        });
      } catch {
        failure = problemText(null);
        break;
      }
    }
    const undecided = [...results.values()].some((r) => r.problem?.code === "line_not_decided");
    if (!failure && undecided) failure = "some lines were not decided (the service was unavailable).";
    void context.refreshBalance();
    showOutcome(checked.map((line) => ({ line, result: results.get(line) })), charged, failure);
    if (failure) {
      button.disabled = false;
      button.textContent = "Place again";
    } else {
      nonceFor = null; // done: the same lines again are another mass order
      fill(preview);
    }
  };

  const showOutcome = (outcomes: Outcome[], charged: bigint, failure: string | null): void => {
    const placed = outcomes.filter((o) => o.result?.order);
    const refused = outcomes.filter((o) => o.result?.problem);
    const outcomeText = (o: Outcome): string =>
      o.result?.order ? `Placed (${o.result.order.status.replace("_", " ")})` : o.result?.problem?.code === "line_not_decided" ? "Not decided yet" : o.result?.problem ? `Refused: ${o.result.problem.message}` : o.line.error ? `Not sent: ${o.line.error}` : "Not placed yet";
    const download = h("button", { type: "button", class: "button small ghost" }, "Download results (CSV)");
    download.addEventListener("click", () => {
      const csv = toCsv(
        ["line", "email", "quantity", "outcome", "order_id", "status", "price", "problem"],
        outcomes.map((o) => [
          o.line.number,
          o.line.email,
          o.line.quantity,
          o.result?.order ? "placed" : o.result?.problem ? "refused" : o.line.error ? "not sent" : "not placed",
          o.result?.order?.id ?? "",
          o.result?.order?.status ?? "",
          o.result?.order?.price ?? "",
          o.result?.problem?.code ?? o.line.error ?? "",
        ]),
      );
      const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      const link = h("a", { href: url, download: "mass-order-results.csv" });
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
    fill(
      outcome,
      h("div", { class: "card-head" }, h("h3", null, "Outcome"), download),
      failure ? h("p", { class: "message error", role: "alert" }, `Stopped: ${failure} Press "Place again": what was placed is not placed twice.`) : null,
      h("p", { class: "message success", role: "status", id: "mass-result" }, `${placed.length} placed, ${refused.length} refused, ${usd(formatMills(Number(charged)))} debited.`),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "mass-table", "aria-label": "Outcome of the mass order" },
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Line"), h("th", { scope: "col" }, "Email"), h("th", { scope: "col", class: "num" }, "Quantity"), h("th", { scope: "col" }, "Order"), h("th", { scope: "col" }, "Outcome"))),
          h(
            "tbody",
            null,
            ...outcomes.map((o) =>
              h(
                "tr",
                { class: o.result?.order ? "" : "line-error" },
                h("td", { class: "num" }, String(o.line.number)),
                h("td", null, o.line.email),
                h("td", { class: "num" }, o.line.quantity),
                h("td", null, o.result?.order ? h("code", null, o.result.order.id) : "—"),
                h("td", null, outcomeText(o)),
              ),
            ),
          ),
        ),
      ),
    );
  };

  const previewButton = h("button", { type: "submit", class: "button" }, "Preview");
  const form = h(
    "form",
    { class: "mass-form", novalidate: true, "aria-label": "Mass order" },
    h("div", { class: "field grow" }, h("label", { for: "mass-lines" }, "Lines"), lines, h("p", { id: "mass-lines-help", class: "help" }, "One order per line: ", h("code", null, "email quantity"), ", ", h("code", null, "email|quantity"), " or ", h("code", null, "email,quantity"), `. Up to ${MAX_FORM_LINES.toLocaleString("en-US")} lines; nothing is placed before you confirm the preview.`)),
    h("div", { class: "field" }, h("label", { for: "mass-file" }, "Or a CSV file"), file),
    h("div", { class: "field actions" }, previewButton),
    h("div", { class: "form-result" }, formMessage.element),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    showPreview();
  });
  lines.addEventListener("input", () => {
    fill(preview);
    formMessage.clear();
  });

  const element = h(
    "div",
    { class: "page" },
    h(
      "section",
      { class: "card", "aria-labelledby": "mass-title" },
      h("h2", { id: "mass-title" }, "Many orders at once"),
      h("p", { class: "help" }, "Each line becomes an order of its own, decided in the given order as if placed one by one: each recipient is asked to confirm by email before any work starts."),
      form,
      preview,
      outcome,
    ),
  );
  return { title: "Mass order", element };
}
