// The portfolio table: holdings from GET /v1/portfolio, valued at the live price stream.
//
// The server's answer gives quantities, average prices, realized P&L and the previous close
// (as last price minus day change per share); each price from the stream then moves Last,
// Value, Unrealized P&L and Day of its row and the totals, in exact decimals (decimal.js).
// A value that cannot be known yet (no price, no previous close) shows "—" in its row, and a
// total of only unknown values shows "—" too, never a zero.

import { request } from "./api.js";
import { format, formatPrice, parse, percent, signOf, sumKnown, times } from "./decimal.js";
import { $, el } from "./dom.js";

let answer = null; // the last GET /v1/portfolio
const live = new Map(); // symbol -> the stream's latest price, in ten-thousandths
let drawPending = false;

function valued(h) {
  const qty = h.quantity;
  const last = live.get(h.symbol) ?? parse(h.last_price);
  const cost = times(parse(h.avg_price), qty);
  const value = last === null ? null : times(last, qty);
  // The previous close's value, from the server's last price and day change.
  const serverValue = parse(h.market_value);
  const serverDay = parse(h.day_change);
  const previous = serverValue === null || serverDay === null ? null : serverValue - serverDay;
  const unrealized = value === null ? null : value - cost;
  return {
    symbol: h.symbol,
    qty,
    avg: parse(h.avg_price),
    last,
    value,
    unrealized,
    unrealizedPct: unrealized === null ? null : percent(unrealized, cost),
    realized: parse(h.realized_pnl),
    day: value === null || previous === null ? null : value - previous,
  };
}

const cell = (text, sign = "") => el("td", { class: `num ${sign}` }, text);
const money = (units, signed = false) => cell(format(units, 2), signed ? signOf(units) : "");

function draw() {
  drawPending = false;
  if (!answer) return;
  const { cash, holdings } = answer;
  const rows = holdings.map(valued);
  const totalValue = sumKnown(rows.map((r) => r.value));
  const balance = parse(cash.balance);
  $("#cash").replaceChildren(
    el("span", {}, "Cash ", el("strong", { "data-field": "cash-available" }, format(parse(cash.available), 2)), " available"),
    el("span", { class: "muted" }, `locked ${format(parse(cash.locked), 2)}`),
    el("span", {}, "Total value ", el("strong", { "data-field": "total-value" }, format(balance + (totalValue ?? 0n), 2))),
  );
  $("#portfolio tbody").replaceChildren(
    ...(rows.length
      ? rows.map((r) => el("tr", { "data-symbol": r.symbol },
        el("td", {}, r.symbol),
        cell(String(r.qty)),
        cell(formatPrice(r.avg)),
        cell(formatPrice(r.last)),
        money(r.value),
        money(r.unrealized, true),
        money(r.unrealizedPct, true),
        money(r.realized, true),
        money(r.day, true),
      ))
      : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, "No holdings yet"))]),
  );
  const day = sumKnown(rows.map((r) => r.day));
  const unrealized = sumKnown(rows.map((r) => r.unrealized));
  $("#portfolio tfoot").replaceChildren(
    el("tr", {},
      el("td", { colspan: "4" }, "Total"),
      money(totalValue),
      money(unrealized, true),
      el("td"),
      money(sumKnown(rows.map((r) => r.realized)), true),
      money(day, true),
    ),
  );
}

function redraw() {
  // Prices arrive in bursts (one per symbol per interval): draw once per frame at most.
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(draw);
}

/** Fetch the portfolio and draw it; its symbols (to add to the price stream) are returned. */
export async function refresh() {
  try {
    answer = await request("/v1/portfolio");
  } catch (error) {
    $("#cash").textContent = `Portfolio: ${error.message}`;
    return [];
  }
  draw();
  return answer.holdings.map((h) => h.symbol);
}

/** A price from the stream: the row of its symbol follows it. */
export function price(symbol, text) {
  const units = parse(text);
  if (units === null) return;
  live.set(symbol, units);
  if (answer?.holdings.some((h) => h.symbol === symbol)) redraw();
}

export function clear() {
  answer = null;
  live.clear();
  $("#portfolio tbody").replaceChildren();
  $("#portfolio tfoot").replaceChildren();
  $("#cash").replaceChildren();
}
