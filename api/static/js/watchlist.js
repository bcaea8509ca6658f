// The watchlist, kept by the server (GET/PUT /v1/watchlist): the ticker's symbols.

import { request } from "./api.js";
import { $, el, say } from "./dom.js";

let symbols = [];
let changed = () => {};

function render() {
  $("#watchlist").replaceChildren(
    ...symbols.map((s) => el("li", { "data-symbol": s }, s,
      el("button", { type: "button", class: "link", title: `Remove ${s}`, "aria-label": `Remove ${s}`, onclick: () => remove(s) }, "×"))),
  );
}

async function save(next) {
  say("#watchlist-message", "");
  try {
    const answer = await request("/v1/watchlist", { method: "PUT", body: { symbols: next } });
    symbols = answer.symbols;
    render();
    changed(symbols);
    return true;
  } catch (error) {
    say("#watchlist-message", error.message, true);
    return false;
  }
}

function remove(symbol) {
  return save(symbols.filter((s) => s !== symbol));
}

async function add(event) {
  event.preventDefault();
  const symbol = $("#watchlist-add").value.trim().toUpperCase();
  if (!symbol || symbols.includes(symbol)) return;
  if (await save([...symbols, symbol])) $("#watchlist-add").value = "";
}

/** Load the saved list (or the server's default); the symbols in order. */
export async function load() {
  const answer = await request("/v1/watchlist");
  symbols = answer.symbols;
  render();
  return symbols;
}

/** Wire the form; `onChange(symbols)` runs after each saved change. */
export function init(onChange) {
  changed = onChange;
  $("#watchlist-form").addEventListener("submit", add);
}
