// The page: sign-up and 2FA enrolment for a newcomer, login, then the ticker (the watchlist),
// chart, portfolio, orders, KYC, cash and API keys, kept live by the streams.

import * as api from "./api.js";
import * as apikeys from "./apikeys.js";
import * as blotter from "./blotter.js";
import * as chart from "./chart.js";
import { $, el, showView } from "./dom.js";
import { humanMessage } from "./errors.js";
import * as funds from "./funds.js";
import * as kyc from "./kyc.js";
import * as onboarding from "./onboarding.js";
import * as portfolio from "./portfolio.js";
import * as session from "./session.js";
import { follow } from "./sse.js";
import * as ticker from "./ticker.js";
import * as watchlist from "./watchlist.js";

const PORTFOLIO_REFRESH_MS = 5000;
// The server's default bound on symbols per price stream (BROKER_STREAM_SYMBOLS_PER_CLIENT_MAX).
const STREAM_SYMBOLS_MAX = 100;
const DUPLICATE_TAB = "This session is open in another tab. Log in here to open a separate one.";

let streams = [];
let watch = []; // the ticker's symbols: the watchlist
let held = []; // symbols of the portfolio's holdings
let prices = null; // the one price stream: chart, holdings and watchlist symbols
let priced = new Set();
let timers = [];
let lastPlaced = null; // the order the form placed last: its message follows the order's state

function setStreamState(state, detail) {
  const badge = $("#stream-state");
  badge.textContent = state === "live" ? "live" : state;
  badge.title = detail || "";
  badge.className = `badge ${state === "live" ? "live" : "down"}`;
  if (state === "closed" && detail === "unauthorized") endHere(humanMessage(401, null));
}

function onPrice({ symbol, price, ts }) {
  ticker.showPrice(symbol, price);
  chart.price(symbol, price, ts);
  portfolio.price(symbol, price);
}

/** The symbols the page shows a price of, the chart's first, within the stream's bound. */
function wanted() {
  const chartSymbol = $("#chart-symbol").value;
  return [...new Set([chartSymbol, ...held, ...watch].filter(Boolean))].slice(0, STREAM_SYMBOLS_MAX);
}

/** (Re)start the price stream when a symbol the page shows is not on it. */
function followPrices() {
  const symbols = wanted();
  if (prices && symbols.every((s) => priced.has(s))) return;
  if (prices) prices.stop();
  priced = new Set(symbols);
  const query = new URLSearchParams({ symbols: symbols.join(",") });
  prices = follow(`/v1/stream/prices?${query}`, ({ event, data }) => {
    if (event === "snapshot") for (const p of data.prices) onPrice(p);
    else if (event === "price") onPrice(data);
    // "resync": prices were skipped while away; the fresh snapshot that follows replaces them.
  }, setStreamState);
}

function pickSymbol(symbol) {
  $("#chart-symbol").value = symbol;
  $("#order-symbol").value = symbol;
  ticker.select(symbol);
  chart.show(symbol);
  if (prices) followPrices();
}

function showWatchlist(symbols) {
  watch = symbols;
  ticker.setSymbols(watch, pickSymbol);
  ticker.select($("#chart-symbol").value);
  // New tiles start empty: a new stream's snapshot fills them at once.
  if (prices) prices.stop();
  prices = null;
  followPrices();
}

async function refreshPortfolio() {
  held = await portfolio.refresh();
  if (prices) followPrices();
}

function followOrders() {
  let first = true;
  return follow("/v1/stream/orders", ({ event, data }) => {
    if (event !== "order") return;
    blotter.upsert(data);
    if (data.id === lastPlaced) showPlaced(data);
    if (data.cum_qty > 0 || data.status === "FILLED") {
      refreshPortfolio();
      funds.refresh();
    }
  }, (state) => {
    // Changes made while the stream was down are not replayed: reload the list on reconnect.
    if (state === "live" && !first) blotter.reload().catch(() => {});
    if (state === "live") first = false;
  });
}

async function start() {
  showView("app-view");
  $("#session").hidden = false;
  $("#session-email").textContent = session.email();

  const { symbols } = await api.request("/v1/market/symbols");
  const names = symbols.map((s) => s.symbol);
  $("#chart-symbol").replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  $("#symbol-list").replaceChildren(...names.map((n) => el("option", { value: n })));
  watch = await watchlist.load();
  ticker.setSymbols(watch, pickSymbol);
  pickSymbol(watch[0] || names[0]);
  held = await portfolio.refresh();
  followPrices();
  streams = [followOrders()];
  await Promise.all([blotter.reload(), kyc.refresh(), funds.refresh(), apikeys.refresh()]);
  timers.push(setInterval(refreshPortfolio, PORTFOLIO_REFRESH_MS));
}

/** After a login (or a reload with a session): enrol 2FA first if it is not set up yet. */
async function enter() {
  const me = await api.request("/v1/auth/me");
  if (!me.two_factor_enrolled) await onboarding.enrol();
  else await start();
}

/** Stop everything the session runs and show the login form with a sentence. */
function endHere(message = "") {
  for (const s of streams) s.stop();
  for (const t of timers) clearInterval(t);
  if (prices) prices.stop();
  prices = null;
  priced = new Set();
  streams = [];
  timers = [];
  chart.stop();
  blotter.clear();
  portfolio.clear();
  kyc.stop();
  funds.stop();
  apikeys.hideSecret();
  session.forget();
  $("#session").hidden = true;
  showView("login-view");
  $("#login-error").textContent = message;
}

async function logout() {
  $("#logout").disabled = true;
  await api.logout();
  $("#logout").disabled = false;
  endHere("You are logged out.");
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
    refreshPortfolio();
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
    await enter();
  } catch (error) {
    endHere(error.message);
  }
}

async function resume() {
  if (!session.active()) return;
  if (!(await session.claim())) {
    endHere(DUPLICATE_TAB);
    return;
  }
  try {
    await enter();
  } catch (error) {
    endHere(error.message);
  }
}

function main() {
  chart.init();
  onboarding.init(() => start().catch((error) => endHere(error.message)));
  kyc.init(() => {});
  funds.init(() => refreshPortfolio());
  apikeys.init();
  watchlist.init(showWatchlist);
  const ended = (code) => endHere(humanMessage(401, code ? { error: code } : null));
  session.whenEnded(ended);
  api.whenUnauthorized(ended);
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", logout);
  $("#order-form").addEventListener("submit", placeOrder);
  $("#order-type").addEventListener("change", syncOrderFields);
  $("#chart-symbol").addEventListener("change", (e) => pickSymbol(e.target.value));
  syncOrderFields();
  resume();
}

main();
