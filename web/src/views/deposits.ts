import { api, dataOrProblem, exportButton, problemText, type Schemas } from "../api/client";
import type { Page } from "../app";
import { fill, h } from "../dom";
import { moneyElement, timeElement, usd } from "../format";
import { qrCode } from "../qr";
import { copyButton, onArrowKeys, PagedTable } from "../ui";

type Network = Schemas["Network"];
type Deposit = Schemas["DepositOut"];

// Every network the API knows, in the order shown. `satisfies` and the check below make the
// type check fail when the API gains or loses a network.
const NETWORKS = ["USDT-TRC20", "USDT-ERC20", "BTC", "LTC"] as const satisfies readonly Network[];
type MissingNetwork = Exclude<Network, (typeof NETWORKS)[number]>;
const allNetworksShown: MissingNetwork extends never ? true : false = true;
void allNetworksShown;

const NETWORK_NAMES: Record<Network, string> = {
  "USDT-TRC20": "USDT on Tron (TRC-20)",
  "USDT-ERC20": "USDT on Ethereum (ERC-20)",
  BTC: "Bitcoin",
  LTC: "Litecoin",
};

export function depositsPage(): Page {
  const addressPanel = h("div", { class: "address-panel", id: "address-panel", role: "tabpanel", "aria-live": "polite" });
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Network" });
  const tabButtons = new Map<Network, HTMLButtonElement>();
  // Addresses come from a limited pool: the page reads the ones already assigned and assigns a
  // network's address only when the customer asks for it.
  const assigned = new Map<Network, string>();
  let selected: Network = NETWORKS[0];

  const showPanel = (network: Network): void => {
    const address = assigned.get(network);
    fill(addressPanel, address ? addressView(network, address) : requestView(network, () => void assign(network)));
  };
  const assign = async (network: Network): Promise<void> => {
    fill(addressPanel, addressSkeleton());
    try {
      // POST assigns (or returns the one already assigned); reading never takes one from the pool.
      const { data, error } = await api.POST("/v1/deposit-addresses/{network}", { params: { path: { network } } });
      if (data) assigned.set(network, data.address);
      if (network !== selected) return; // the customer moved on to another network meanwhile
      if (data) {
        showPanel(network);
        addressPanel.querySelector<HTMLElement>(".address")?.focus();
      } else {
        fill(addressPanel, h("div", { class: "address-view" }, h("p", { class: "message error", role: "alert" }, problemText(error))));
      }
    } catch {
      if (network === selected) fill(addressPanel, h("div", { class: "address-view" }, h("p", { class: "message error", role: "alert" }, problemText(null))));
    }
  };
  const select = (network: Network, focus = false): void => {
    selected = network;
    for (const [n, button] of tabButtons) {
      const isSelected = n === network;
      button.setAttribute("aria-selected", String(isSelected));
      button.tabIndex = isSelected ? 0 : -1;
      if (isSelected && focus) button.focus();
    }
    addressPanel.setAttribute("aria-labelledby", `tab-${network}`);
    showPanel(network);
  };

  NETWORKS.forEach((network, index) => {
    const button = h("button", { type: "button", role: "tab", id: `tab-${network}`, "aria-controls": "address-panel", "aria-selected": "false", class: "tab" }, network);
    button.addEventListener("click", () => select(network));
    button.addEventListener("keydown", onArrowKeys(index, NETWORKS.length, (next) => select(NETWORKS[next]!, true)));
    tabButtons.set(network, button);
    tabs.append(button);
  });
  fill(addressPanel, addressSkeleton());
  void (async () => {
    try {
      const { data } = await api.GET("/v1/deposit-addresses");
      for (const address of data?.data ?? []) assigned.set(address.network, address.address);
    } catch {
      // Shown as "no address yet"; asking for one reports the error.
    }
    // Open on the first network that already has an address.
    select(NETWORKS.find((n) => assigned.has(n)) ?? selected);
  })();

  const tiers = h("div", { class: "tiers" }, h("p", { class: "help" }, "Loading bonus tiers…"));
  void loadTiers(tiers);

  const table = new PagedTable<Deposit, number>({
    caption: "Your deposits, newest first",
    pageSize: 20,
    empty: "No deposits yet. Send funds to one of your addresses above; they appear here once confirmed on chain.",
    columns: [
      { header: "Network", cell: (d) => d.network ?? "—" },
      {
        header: "Amount",
        className: "num",
        cell: (d) => [moneyElement(d.amount), d.bonus !== "0.00" ? h("span", { class: "bonus-note" }, " + ", moneyElement(d.bonus), " bonus") : null],
      },
      { header: "Tx hash", cell: (d) => (d.tx_hash ? h("code", { class: "hash", title: d.tx_hash }, d.tx_hash) : "—") },
      { header: "Time", cell: (d) => timeElement(d.created) },
    ],
    load: (cursor, limit) => dataOrProblem(() => api.GET("/v1/deposits", { params: { query: { limit, ...cursor } } })),
  });
  void table.first();

  const element = h(
    "div",
    { class: "page" },
    h(
      "section",
      { class: "card", "aria-labelledby": "address-title" },
      h("h2", { id: "address-title" }, "Deposit address"),
      h("p", { class: "help" }, "Pick a network. Send only that network's asset to its address: it is yours alone, and deposits to it are credited automatically once confirmed."),
      tabs,
      addressPanel,
    ),
    h("section", { class: "card", "aria-labelledby": "bonus-title" }, h("h2", { id: "bonus-title" }, "Deposit bonus"), tiers),
    h("section", { class: "card", "aria-labelledby": "deposits-title" }, h("h2", { id: "deposits-title" }, "Your deposits"), exportButton("/v1/deposits/export", "deposits.csv", "Export all as CSV"), table.element),
  );
  return { title: "Deposits", element };
}

function addressSkeleton(): HTMLElement {
  return h("div", { class: "address-view" }, h("div", { class: "qr-placeholder" }), h("div", { class: "address-text" }, h("span", { class: "skeleton wide" })));
}

function addressView(network: Network, address: string): HTMLElement {
  return h(
    "div",
    { class: "address-view" },
    qrCode(address, `QR code of your ${network} deposit address`),
    h(
      "div",
      { class: "address-text" },
      h("p", { class: "label" }, NETWORK_NAMES[network]),
      h("code", { class: "address", id: "deposit-address", tabindex: -1 }, address),
      h("div", null, copyButton(() => address, `Copy the ${network} address`)),
      h("p", { class: "help" }, `Send ${network.startsWith("USDT") ? "USDT" : network} on this network only. Funds sent on another network may be lost.`),
      h("p", { class: "help" }, "An address that receives no deposit for a long time goes back to the pool: check it here before each deposit."),
    ),
  );
}

function requestView(network: Network, request: () => void): HTMLElement {
  return h(
    "div",
    { class: "address-view" },
    h("div", { class: "qr-placeholder", "aria-hidden": "true" }),
    h(
      "div",
      { class: "address-text" },
      h("p", { class: "label" }, NETWORK_NAMES[network]),
      h("p", null, `You have no ${network} address yet. It is yours alone once assigned.`),
      h("button", { type: "button", class: "button primary", onclick: request }, `Get my ${network} address`),
    ),
  );
}

async function loadTiers(container: HTMLElement): Promise<void> {
  try {
    const { data, error } = await api.GET("/v1/bonus-tiers");
    if (!data) {
      fill(container, h("p", { class: "message error" }, problemText(error)));
    } else if (data.data.length === 0) {
      fill(container, h("p", { class: "help" }, "There is no deposit bonus at the moment."));
    } else {
      fill(
        container,
        h("p", null, "When you deposit more than a certain amount, you get a bonus on your account:"),
        h(
          "ul",
          { class: "tier-list" },
          data.data.map((tier) =>
            h("li", null, h("span", { class: "tier-percent" }, `+${tier.percent}%`), h("span", null, `on deposits of ${usd(tier.threshold)} or more`)),
          ),
        ),
        h("p", { class: "help" }, "The highest tier your deposit reaches applies; the bonus is credited with the deposit."),
      );
    }
  } catch {
    fill(container, h("p", { class: "message error" }, problemText(null)));
  }
}
