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

export function usd(amount: string): string {
  return `${amount} USD`;
}

export function signedUsd(amount: string): string {
  return amount.startsWith("-") ? `${amount} USD` : `+${amount} USD`;
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
