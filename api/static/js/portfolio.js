// The portfolio table: holdings with P&L, cash and totals, from GET /v1/portfolio.

import { request } from "./api.js";
import { $, el, show, signClass } from "./dom.js";

const num = (value, signed = false) => el("td", { class: `num ${signed ? signClass(value) : ""}` }, show(value));

/** Fetch and draw the portfolio; errors are shown in the table's place. */
export async function refresh() {
  let answer;
  try {
    answer = await request("/v1/portfolio");
  } catch (error) {
    $("#cash").textContent = `portfolio: ${error.message}`;
    return;
  }
  const { cash, holdings, totals } = answer;
  $("#cash").replaceChildren(
    el("span", {}, "Cash ", el("strong", { "data-field": "cash-available" }, show(cash.available)), " available"),
    el("span", { class: "muted" }, `locked ${show(cash.locked)}`),
    el("span", {}, "Total value ", el("strong", { "data-field": "total-value" }, show(totals.total_value))),
  );
  const rows = holdings.map((h) =>
    el("tr", { "data-symbol": h.symbol },
      el("td", {}, h.symbol),
      num(String(h.quantity)),
      num(h.avg_price),
      num(h.last_price),
      num(h.market_value),
      num(h.unrealized_pnl, true),
      num(h.unrealized_pnl_pct, true),
      num(h.realized_pnl, true),
      num(h.day_change, true),
    ));
  $("#portfolio tbody").replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, "No holdings yet"))]),
  );
  $("#portfolio tfoot").replaceChildren(
    el("tr", {},
      el("td", { colspan: "4" }, "Total"),
      num(totals.market_value),
      num(totals.unrealized_pnl, true),
      el("td"),
      num(totals.realized_pnl, true),
      num(totals.day_change, true),
    ),
  );
}
