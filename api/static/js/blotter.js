// The order blotter: recent orders from GET /v1/orders, kept live by the order stream.

import { request } from "./api.js";
import { $, el, show, timeOf } from "./dom.js";

const FINAL = new Set(["FILLED", "CANCELED", "REJECTED", "EXPIRED"]);
const orders = new Map(); // id -> the order as GET /v1/orders/{id} returns it
const PAGE = 50;

function row(o) {
  const cancel = FINAL.has(o.status) || o.status === "PENDING_CANCEL"
    ? ""
    : el("button", { type: "button", class: "link", onclick: () => cancelOrder(o.id) }, "Cancel");
  return el("tr", { "data-order-id": o.id, "data-status": o.status },
    el("td", { title: o.created_at }, timeOf(o.created_at)),
    el("td", {}, o.symbol),
    el("td", { class: o.side === "BUY" ? "up" : "down" }, o.side),
    el("td", {}, o.type),
    el("td", { class: "num" }, String(o.quantity)),
    el("td", { class: "num" }, show(o.price ?? o.trigger_price)),
    el("td", { class: "num" }, String(o.cum_qty)),
    el("td", { class: "num" }, show(o.avg_px)),
    el("td", { class: `status status-${o.status}`, title: o.reject_reason || "" }, o.status),
    el("td", {}, cancel),
  );
}

function render() {
  const list = [...orders.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  $("#blotter tbody").replaceChildren(
    ...(list.length ? list.map(row) : [el("tr", {}, el("td", { colspan: "10", class: "muted" }, "No orders yet"))]),
  );
}

async function cancelOrder(id) {
  try {
    upsert(await request(`/v1/orders/${id}`, { method: "DELETE" }));
  } catch (error) {
    $("#order-message").textContent = `cancel: ${error.message}`;
  }
}

/** Load the newest orders (after login and after the order stream reconnects). */
export async function reload() {
  const page = await request(`/v1/orders?limit=${PAGE}`);
  orders.clear();
  for (const o of page.items) orders.set(o.id, o);
  render();
}

/** Take an order's newer state (from the stream or an API answer); an older one is ignored. */
export function upsert(order) {
  const known = orders.get(order.id);
  if (known && known.updated_at > order.updated_at) return;
  orders.set(order.id, order);
  render();
}

export function clear() {
  orders.clear();
  render();
}
