// The candlestick chart (TradingView Lightweight Charts, vendored in ../vendor/).

import { CandlestickSeries, createChart } from "../vendor/lightweight-charts.module.js";
import { request } from "./api.js";
import { $, el } from "./dom.js";

export const INTERVALS = ["1s", "1m", "5m", "15m", "1h", "1d", "1w", "1mo"];
// Bucket widths for drawing live prices into the last candle; longer intervals wait for a reload.
const BUCKET_S = { "1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
const CANDLES_LIMIT = 300;
// The API refuses a range over BROKER_CANDLES_RANGE_DAYS_MAX (3660 days), counting a month as
// 31 days: 300 months would be 25 years.
const CANDLES_LIMIT_BY_INTERVAL = { "1mo": 110 };
const RELOAD_MS = 10000;

let chart = null;
let series = null;
let state = { symbol: null, interval: "1m", last: null, loading: 0 };
let reloadTimer = null;
// Set when the person scrolls or zooms the chart: reloads then keep their view instead of
// fitting the data again; a switch of symbol or interval fits it anew.
let userMoved = false;

const seconds = (iso) => Math.floor(Date.parse(iso) / 1000);

function toBar(c) {
  // Floats are fine here: the chart only draws, no money is computed from these numbers.
  return { time: seconds(c.ts), open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
}

/** Create the chart and the interval buttons; `onInterval` is told of a switch. */
export function init() {
  const box = $("#chart");
  chart = createChart(box, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#1d2330" },
    grid: { vertLines: { color: "#f0f1f3" }, horzLines: { color: "#f0f1f3" } },
    timeScale: { timeVisible: true, secondsVisible: true },
  });
  series = chart.addSeries(CandlestickSeries, {
    upColor: "#0a8f4e", downColor: "#c62828", borderVisible: false,
    wickUpColor: "#0a8f4e", wickDownColor: "#c62828",
  });
  for (const type of ["mousedown", "wheel", "touchstart"]) box.addEventListener(type, () => { userMoved = true; }, { passive: true });
  const buttons = $("#intervals");
  for (const interval of INTERVALS) {
    buttons.append(el("button", { type: "button", "data-interval": interval, onclick: () => show(state.symbol, interval) }, interval));
  }
}

function setStatus(text) {
  $("#chart-status").textContent = text;
}

/** Load and draw the candles of a symbol at an interval. */
export async function show(symbol, interval = state.interval) {
  if (!symbol) return;
  const ticket = ++state.loading;
  if (symbol !== state.symbol || interval !== state.interval) userMoved = false;
  state = { ...state, symbol, interval };
  for (const b of document.querySelectorAll("#intervals button")) b.classList.toggle("active", b.dataset.interval === interval);
  const box = $("#chart");
  if (box.dataset.symbol !== symbol) delete box.dataset.lastPrice;
  delete box.dataset.fitted;
  box.dataset.symbol = symbol;
  box.dataset.interval = interval;
  setStatus("loading…");
  try {
    const query = new URLSearchParams({ symbol, interval, limit: String(CANDLES_LIMIT_BY_INTERVAL[interval] ?? CANDLES_LIMIT) });
    const answer = await request(`/v1/market/candles?${query}`);
    if (ticket !== state.loading) return; // a newer switch won
    const bars = answer.candles.map(toBar);
    series.setData(bars);
    state.last = bars.length ? bars[bars.length - 1] : null;
    // What the candles API answered (live prices drawn on top are not counted).
    box.dataset.candles = String(bars.length);
    box.dataset.loadedInterval = interval;
    setStatus(bars.length ? "" : "no trades yet");
    if (bars.length && !userMoved) fit(bars.length, interval);
  } catch (error) {
    if (ticket === state.loading) {
      // Never leave another interval's candles on show under this one's name.
      series.setData([]);
      state.last = null;
      setStatus(`candles: ${error.message}`);
    }
  }
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => show(state.symbol, state.interval), RELOAD_MS);
}

/** Spread the candles over the whole width, and note how much of it they fill (for tests). */
function fit(count, interval) {
  const timeScale = chart.timeScale();
  timeScale.fitContent();
  // The chart applies the new range on its next frame.
  requestAnimationFrame(() => {
    const range = timeScale.getVisibleLogicalRange();
    const box = $("#chart");
    if (!range || box.dataset.interval !== interval) return;
    box.dataset.fill = (count / (range.to - range.from)).toFixed(2);
    box.dataset.fitted = interval;
  });
}

/** Draw a live price into the current candle (or start the next one). */
export function price(symbol, value, iso) {
  const width = BUCKET_S[state.interval];
  if (symbol !== state.symbol || !width || !series) return;
  const time = Math.floor(seconds(iso) / width) * width;
  const close = Number(value);
  const last = state.last;
  if (last && time < last.time) return; // older than what is drawn
  const bar = last && time === last.time
    ? { ...last, high: Math.max(last.high, close), low: Math.min(last.low, close), close }
    : { time, open: close, high: close, low: close, close };
  series.update(bar);
  state.last = bar;
  $("#chart").dataset.lastPrice = value;
}

export function stop() {
  clearTimeout(reloadTimer);
  state.loading += 1;
}
