// The live ticker: one tile per watched symbol, updated from the price stream.

import { formatPrice, parse } from "./decimal.js";
import { $, el } from "./dom.js";

const tiles = new Map(); // symbol -> {node, price}

/** Draw empty tiles for these symbols; `onPick(symbol)` runs when one is clicked. */
export function setSymbols(symbols, onPick) {
  const box = $("#ticker");
  box.replaceChildren();
  tiles.clear();
  for (const symbol of symbols) {
    const price = el("div", { class: "price" }, "—");
    const node = el(
      "div",
      { class: "quote", "data-symbol": symbol, "data-updates": "0", onclick: () => onPick(symbol) },
      el("div", { class: "sym" }, symbol),
      price,
    );
    box.append(node);
    tiles.set(symbol, { node, priceNode: price, price: null, updates: 0 });
  }
}

/** Show a price; the tile turns green or red by the direction of the change. */
export function showPrice(symbol, price) {
  const tile = tiles.get(symbol);
  if (!tile || price === tile.price) return;
  const previous = tile.price;
  tile.price = price;
  // The same text as the portfolio's Last column, so the two never read differently.
  tile.priceNode.textContent = formatPrice(parse(price));
  tile.updates += 1;
  tile.node.dataset.updates = String(tile.updates);
  if (previous !== null) {
    // Numbers only to pick a colour: the text shown is the server's exact decimal.
    const up = Number(price) >= Number(previous);
    tile.node.classList.toggle("up", up);
    tile.node.classList.toggle("down", !up);
  }
}

export function select(symbol) {
  for (const [name, tile] of tiles) tile.node.classList.toggle("selected", name === symbol);
}
