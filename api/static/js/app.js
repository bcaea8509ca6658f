// The page: login, then the ticker, chart, portfolio, order entry and blotter, all live.

import * as api from "./api.js";
import * as blotter from "./blotter.js";
import * as chart from "./chart.js";
import { $, el } from "./dom.js";
import * as portfolio from "./portfolio.js";
import { follow } from "./sse.js";
import * as ticker from "./ticker.js";

const WATCHLIST_SIZE = 10; // tiles in the ticker (the server limits symbols per stream)
const PORTFOLIO_REFRESH_MS = 5000;

let streams = [];
let watch = []; // the ticker's symbols
let prices = null; // the price stream: the ticker's symbols and the chart's
let priced = new Set();
let timers = [];
let lastPlaced = null; // the order the form placed last: its message follows the order's state

function setStreamState(state, detail) {
  const badge = $("#stream-state");
  badge.textContent = state === "live" ? "live" : state;
  badge.title = detail || "";
  badge.className = `badge ${state === "live" ? "live" : "down"}`;
  if (state === "closed" && detail === "unauthorized") logout("Your session ended; log in again.");
}

function pickSymbol(symbol) {
  $("#chart-symbol").value = symbol;
  $("#order-symbol").value = symbol;
  ticker.select(symbol);
  chart.show(symbol);
  if (prices && !priced.has(symbol)) followPrices([...watch, symbol]);
}

function onPrice({ symbol, price, ts }) {
  ticker.showPrice(symbol, price);
  chart.price(symbol, price, ts);
}

/** (Re)start the price stream for these symbols (a chart symbol off the ticker joins it). */
function followPrices(symbols) {
  if (prices) prices.stop();
  priced = new Set(symbols);
  const query = new URLSearchParams({ symbols: symbols.join(",") });
  prices = follow(`/v1/stream/prices?${query}`, ({ event, data }) => {
    if (event === "snapshot") for (const p of data.prices) onPrice(p);
    else if (event === "price") onPrice(data);
    // "resync": prices were skipped while away; the fresh snapshot that follows replaces them.
  }, setStreamState);
}

function followOrders() {
  let first = true;
  return follow("/v1/stream/orders", ({ event, data }) => {
    if (event !== "order") return;
    blotter.upsert(data);
    if (data.id === lastPlaced) showPlaced(data);
    if (data.cum_qty > 0 || data.status === "FILLED") portfolio.refresh();
  }, (state) => {
    // Changes made while the stream was down are not replayed: reload the list on reconnect.
    if (state === "live" && !first) blotter.reload().catch(() => {});
    if (state === "live") first = false;
  });
}

async function start() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#session").hidden = false;
  $("#session-email").textContent = api.sessionEmail();

  const { symbols } = await api.request("/v1/market/symbols");
  const names = symbols.map((s) => s.symbol);
  $("#chart-symbol").replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  $("#symbol-list").replaceChildren(...names.map((n) => el("option", { value: n })));
  watch = names.slice(0, WATCHLIST_SIZE);
  ticker.setSymbols(watch, pickSymbol);
  pickSymbol(names[0]);

  followPrices(watch);
  streams = [followOrders()];
  await Promise.all([blotter.reload(), portfolio.refresh()]);
  timers.push(setInterval(portfolio.refresh, PORTFOLIO_REFRESH_MS));
}

function logout(message = "") {
  for (const s of streams) s.stop();
  for (const t of timers) clearInterval(t);
  if (prices) prices.stop();
  prices = null;
  streams = [];
  timers = [];
  chart.stop();
  blotter.clear();
  api.forget();
  $("#app-view").hidden = true;
  $("#session").hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = message;
}

function syncOrderFields() {
  const type = $("#order-type").value;
  $("#price-field").hidden = !(type === "LIMIT" || type === "STOP_LIMIT");
  $("#trigger-field").hidden = !(type === "STOP_LOSS" || type === "STOP_LIMIT");
}

function showPlaced(order) {
  const filled = order.cum_qty ? `, ${order.cum_qty} filled at ${order.avg_px}` : "";
  $("#order-message").textContent = `${order.side} ${order.quantity} ${order.symbol}: ${order.status}${filled}`;
}

async function placeOrder(event) {
  event.preventDefault();
  const message = $("#order-message");
  const type = $("#order-type").value;
  const body = {
    symbol: $("#order-symbol").value.trim().toUpperCase(),
    side: $("#order-side").value,
    type,
    quantity: Number.parseInt($("#order-quantity").value, 10),
  };
  // Prices go as strings: the API refuses JSON numbers with a fraction (binary floats).
  if (!$("#price-field").hidden) body.price = $("#order-price").value.trim();
  if (!$("#trigger-field").hidden) body.trigger_price = $("#order-trigger").value.trim();
  $("#order-submit").disabled = true;
  message.className = "";
  message.textContent = "sending…";
  try {
    const order = await api.request("/v1/orders", {
      method: "POST",
      body,
      headers: { "X-Idempotency-Key": api.idempotencyKey() },
    });
    blotter.upsert(order);
    lastPlaced = order.id;
    showPlaced(order);
    portfolio.refresh();
  } catch (error) {
    message.className = "error";
    message.textContent = error.message;
  } finally {
    $("#order-submit").disabled = false;
  }
}

async function submitLogin(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api.login($("#login-email").value.trim(), $("#login-password").value, $("#login-totp").value.trim());
    $("#login-password").value = "";
    $("#login-totp").value = "";
    await start();
  } catch (error) {
    const reason = error.code === "totp_required" ? "Enter the code from your authenticator app." : error.message;
    logout(reason);
  }
}

function main() {
  chart.init();
  api.whenUnauthorized(() => logout("Your session ended; log in again."));
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", () => logout());
  $("#order-form").addEventListener("submit", placeOrder);
  $("#order-type").addEventListener("change", syncOrderFields);
  $("#chart-symbol").addEventListener("change", (e) => pickSymbol(e.target.value));
  syncOrderFields();
  if (api.token()) start().catch((error) => logout(error.message));
}

main();
