// Reading a mass order's lines (pasted, or a CSV file) and writing its outcome as CSV: plain
// functions, tested in tests/dashboard (through the page) without a rule of their own. Whether a
// line is an order is the API's to say; the preview only checks what `validateOrder` checks.

export interface MassLine {
  /** The line's number in the text (1-based), as the customer sees it in their file. */
  number: number;
  email: string;
  quantity: string;
  /** Why the line cannot be read as `email quantity` at all. */
  unreadable?: boolean;
}

/** Separators between the email and the quantity: `email quantity`, `email|quantity`,
 * `email,quantity`, and what spreadsheets write (`;`, a tab). */
const SEPARATOR = /\s*[|,;\t]\s*|\s+/;

function unquote(field: string): string {
  return field.replace(/^"(.*)"$/, "$1").trim();
}

/** What a header row names its first column. */
const HEADER = /^(e-?mail( address)?|recipient|target|link|address)$/i;

/** One entry per non-empty line; a first line that names its columns (`email,quantity`) is a
 * header and skipped (any other line, however malformed, is a line: the preview shows it). */
export function parseMassLines(text: string): MassLine[] {
  const lines: MassLine[] = [];
  text.split(/\r\n|\r|\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === "") return;
    const fields = trimmed.split(SEPARATOR).map(unquote).filter((f) => f !== "");
    const [email = "", quantity = ""] = fields;
    if (lines.length === 0 && HEADER.test(email)) return; // a header
    lines.push({ number: index + 1, email, quantity, unreadable: fields.length !== 2 || undefined });
  });
  return lines;
}

/** A cell a spreadsheet shows as text, never runs as a formula. */
function csvCell(value: string | number): string {
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with a byte order mark, so that spreadsheets read it as UTF-8. */
export function toCsv(header: string[], rows: (string | number)[][]): string {
  return "\ufeff" + [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

/** An exact API amount ("10.50", "1.234") in mills, on the digits: never through a float. */
export function amountToMills(amount: string): bigint | null {
  const match = /^(-?)(\d+)\.(\d{2,3})$/.exec(amount);
  if (!match) return null;
  const [, sign, whole, fraction] = match as unknown as [string, string, string, string];
  const mills = BigInt(whole) * 1000n + BigInt(fraction.padEnd(3, "0"));
  return sign === "-" ? -mills : mills;
}
