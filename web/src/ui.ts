import { fill, h, type Child } from "./dom";

/** A button that copies `text()` to the clipboard and says so for a moment. */
export function copyButton(text: () => string, label: string): HTMLButtonElement {
  const button = h("button", { type: "button", class: "button small ghost", "aria-label": label }, "Copy");
  button.addEventListener("click", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(text());
      copied = true;
    } catch {
      copied = false;
    }
    button.textContent = copied ? "Copied" : "Select and copy";
    window.setTimeout(() => (button.textContent = "Copy"), 1500);
  });
  return button;
}

/** Where a form's answer appears (role=status, or alert for an error), next to the form. */
export function messageSlot(): { element: HTMLElement; show: (kind: "error" | "success" | "info", text: Child) => void; clear: () => void } {
  const element = h("div", { class: "message-slot", "aria-live": "polite" });
  return {
    element,
    show(kind, text) {
      fill(element, h("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
    },
    clear() {
      element.replaceChildren();
    },
  };
}

/** Arrow keys move between the tabs of a tab list (each tab calls this with its index). */
export function onArrowKeys(index: number, count: number, select: (index: number) => void): (event: KeyboardEvent) => void {
  return (event) => {
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (step === 0) return;
    event.preventDefault();
    select((index + step + count) % count);
  };
}

export interface Column<T> {
  header: string;
  /** The header is read by screen readers only (a column of buttons). */
  hideHeader?: boolean;
  cell: (row: T) => Child;
  className?: string;
}

export type Cursor<Id> = { starting_after?: Id; ending_before?: Id };

/**
 * A newest-first table over a cursor-paged list endpoint: "Newer" and "Older" walk it with
 * ending_before / starting_after, as the API documents. While a page loads the table keeps its
 * height (placeholder rows), so nothing on the page jumps.
 */
export class PagedTable<T extends { id: Id }, Id extends string | number> {
  readonly element: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly newer: HTMLButtonElement;
  private readonly older: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly pager: HTMLElement;
  private requested: Cursor<Id> = {};
  private rows: T[] = [];
  /** Only the latest request may fill the table: a slow earlier answer (an auto-refresh
   * overtaken by a click on "Older") must not overwrite a newer one. */
  private generation = 0;

  constructor(
    private readonly options: {
      caption: string;
      columns: Column<T>[];
      pageSize: number;
      /** What an empty table says (asked each time it is shown empty). */
      empty: string | (() => Child);
      load: (cursor: Cursor<Id>, limit: number) => Promise<{ data: T[]; has_more: boolean } | string>;
      rowClass?: (row: T) => string;
      /** Called with the rows just shown. */
      shown?: (rows: T[]) => void;
    },
  ) {
    this.body = h("tbody");
    this.newer = h("button", { type: "button", class: "button small ghost", disabled: true }, "← Newer");
    this.older = h("button", { type: "button", class: "button small ghost", disabled: true }, "Older →");
    this.status = h("span", { class: "pager-status", "aria-live": "polite" });
    this.pager = h("div", { class: "pager" }, this.newer, this.status, this.older);
    this.newer.addEventListener("click", () => this.go({ ending_before: this.rows[0]?.id } as Cursor<Id>));
    this.older.addEventListener("click", () => this.go({ starting_after: this.rows[this.rows.length - 1]?.id } as Cursor<Id>));
    const table = h(
      "table",
      null,
      h("caption", { class: "visually-hidden" }, options.caption),
      h("thead", null, h("tr", null, options.columns.map((c) =>
            h("th", { scope: "col", class: c.className }, c.hideHeader ? h("span", { class: "visually-hidden" }, c.header) : c.header),
          ),)),
      this.body,
    );
    this.element = h(
      "div",
      { class: "paged-table" },
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": options.caption }, table),
      this.pager,
    );
    this.placeholder();
  }

  /** Reloads the page being shown, or the one last asked for if it is still loading. */
  refresh(): Promise<void> {
    return this.go(this.requested);
  }

  /** Whether the keyboard focus is inside the table (a refresh then waits, so it is not lost). */
  hasFocus(): boolean {
    return this.element.contains(document.activeElement);
  }

  /** Back to the newest page. */
  first(): Promise<void> {
    return this.go({});
  }

  private placeholder(): void {
    fill(
      this.body,
      Array.from({ length: Math.min(this.options.pageSize, 3) }, () =>
        h("tr", { class: "placeholder", "aria-hidden": "true" }, this.options.columns.map(() => h("td", null, h("span", { class: "skeleton" })))),
      ),
    );
  }

  private async go(cursor: Cursor<Id>): Promise<void> {
    if (this.rows.length === 0 && this.body.querySelector("tr.placeholder") === null) this.placeholder();
    this.element.setAttribute("aria-busy", "true");
    const generation = ++this.generation;
    this.requested = cursor;
    const result = await this.options.load(cursor, this.options.pageSize);
    if (generation !== this.generation) return;
    this.element.removeAttribute("aria-busy");
    if (typeof result === "string") {
      fill(this.body, h("tr", null, h("td", { colspan: this.options.columns.length, class: "table-note error" }, result)));
      return;
    }
    const walking = cursor.starting_after !== undefined || cursor.ending_before !== undefined;
    if (walking && (result.data.length === 0 || (cursor.ending_before !== undefined && !result.has_more))) {
      // Back at the newest entries, or the page we were on emptied: show a full newest page.
      return this.go({});
    }
    this.rows = result.data;
    const onNewest = !walking;
    this.newer.disabled = onNewest;
    this.older.disabled = cursor.ending_before !== undefined ? false : !result.has_more;
    // A single page needs no pager (it is the last thing in its card: nothing moves for it).
    this.pager.classList.toggle("single", this.newer.disabled && this.older.disabled);
    const status = result.data.length === 0 ? "" : onNewest ? "Newest first" : "Older entries";
    if (this.status.textContent !== status) this.status.textContent = status;
    this.options.shown?.(result.data);
    if (result.data.length === 0) {
      const hadFocus = this.body.contains(document.activeElement);
      fill(this.body, h("tr", null, h("td", { colspan: this.options.columns.length, class: "table-note" }, typeof this.options.empty === "string" ? this.options.empty : this.options.empty())));
      if (hadFocus) this.restoreFocus(null);
      return;
    }
    // Rows are rebuilt: a focused control in them gets the focus back in its new row (found by
    // its label), or the table region does, so keyboard users do not fall back to the page top.
    const hadFocus = this.body.contains(document.activeElement);
    const focusedLabel = hadFocus ? document.activeElement?.getAttribute("aria-label") : null;
    fill(
      this.body,
      result.data.map((row) =>
        h(
          "tr",
          { class: this.options.rowClass?.(row) ?? "" },
          this.options.columns.map((c) => h("td", { class: c.className, "data-label": c.hideHeader ? "" : c.header }, c.cell(row))),
        ),
      ),
    );
    if (hadFocus) this.restoreFocus(focusedLabel);
  }

  /** Focus the control labelled `label` in the rows, or else the table region. */
  restoreFocus(label: string | null | undefined): void {
    const again = label ? Array.from(this.body.querySelectorAll<HTMLElement>("[aria-label]")).find((e) => e.getAttribute("aria-label") === label) : undefined;
    (again ?? this.element.querySelector<HTMLElement>(".table-scroll"))?.focus();
  }
}
