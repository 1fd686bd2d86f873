// Money arrives from the API as exact decimal strings ("125.50", "-10.00", "1.234"); it is shown
// as such, never parsed into a float.

/** The price of an order in mills (0.001 USD) is its quantity; rendered like the API: 2 or 3 decimals. */
export function formatMills(mills: number): string {
  const sign = mills < 0 ? "-" : "";
  const abs = Math.abs(mills);
  const whole = Math.floor(abs / 1000);
  let fraction = String(abs % 1000).padStart(3, "0");
  if (fraction.endsWith("0")) fraction = fraction.slice(0, 2);
  return `${sign}${whole}.${fraction}`;
}

/**
 * An exact API amount ("165.175") to the cent, for people: the ledger keeps tenths of a cent
 * (an order of 1,234 costs 1.234 USD), but a customer reads "165.175 USD" as a bug. Rounded half
 * away from zero, the one rule for every amount (a balance and the payments that made it agree
 * to the cent); the exact amount is on hover. Done on the digits, never through a float.
 */
export function cents(amount: string): string {
  const match = /^(-?)(\d+)\.(\d{2})(\d?)$/.exec(amount);
  if (!match) return amount;
  const [, sign, whole, two, third] = match as unknown as [string, string, string, string, string];
  let total = BigInt(whole) * 100n + BigInt(two);
  if (Number(third || "0") >= 5) total += 1n;
  const text = `${total / 100n}.${String(total % 100n).padStart(2, "0")}`;
  return total === 0n ? text : `${sign}${text}`;
}

/** Whether the amount has a tenth of a cent that `cents` does not show. */
export function hasMills(amount: string): boolean {
  return /\.\d{2}[1-9]$/.test(amount);
}

export function usd(amount: string): string {
  return `${cents(amount)} USD`;
}

export function signedUsd(amount: string): string {
  return amount.startsWith("-") ? usd(amount) : `+${usd(amount)}`;
}

/** The amount to the cent, with the exact amount on hover when it has a tenth of a cent. */
export function moneyElement(amount: string, options: { signed?: boolean } = {}): HTMLElement {
  const element = document.createElement("span");
  element.className = "money";
  element.textContent = options.signed ? signedUsd(amount) : usd(amount);
  element.title = exactTitle(amount);
  return element;
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A time in the browser's zone; the exact UTC time on hover. */
export function timeElement(iso: string): HTMLTimeElement {
  const date = new Date(iso);
  const element = document.createElement("time");
  element.dateTime = iso;
  element.textContent = localFormat.format(date);
  element.title = `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
  return element;
}

/** The hover text of a balance shown to the cent: its exact value when it has a tenth of a cent. */
export function exactTitle(amount: string): string {
  return hasMills(amount) ? `Exactly ${amount} USD` : "";
}
