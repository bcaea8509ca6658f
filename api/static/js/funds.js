// Cash: the wallet, deposits and withdrawals with their status. The payment gateway confirms
// asynchronously (its webhook credits the wallet), so pending intents are polled until final.

import { idempotencyKey, request } from "./api.js";
import { format, parse } from "./decimal.js";
import { $, el, say, timeOf } from "./dom.js";

const POLL_MS = 1000;
const INTENTS_SHOWN = 8;
const KIND = { DEPOSIT: "Deposit", WITHDRAWAL: "Withdrawal" };
const FAILURES = {
  gateway_unavailable: "the payment service could not be reached",
};

let pollTimer = null;
let changed = () => {};
let pendingBefore = 0;
let lastSent = null; // the intent the form sent last: its message follows its status

const money = (text) => format(parse(text), 2);

function statusText(intent) {
  if (intent.status === "PENDING") return "pending…";
  if (intent.status === "SUCCEEDED") return intent.kind === "DEPOSIT" ? "credited" : "paid out";
  const reason = FAILURES[intent.failure_reason] || intent.failure_reason;
  return reason ? `failed: ${reason}` : "failed";
}

function describe(intent) {
  const what = KIND[intent.kind] || intent.kind;
  say("#funds-message", `${what} of ${money(intent.amount)}: ${statusText(intent)}`, intent.status === "FAILED");
}

function row(intent) {
  return el("tr", { "data-intent-id": intent.intent_id, "data-status": intent.status },
    el("td", { title: intent.created_at }, timeOf(intent.created_at)),
    el("td", {}, KIND[intent.kind] || intent.kind),
    el("td", { class: "num" }, money(intent.amount)),
    el("td", { class: `status-${intent.status}` }, statusText(intent)),
  );
}

/** Read the wallet and the latest intents; polls while one is pending. */
export async function refresh() {
  clearTimeout(pollTimer);
  let wallet;
  let page;
  try {
    [wallet, page] = await Promise.all([
      request("/v1/wallet"),
      request(`/v1/funds/intents?limit=${INTENTS_SHOWN}`),
    ]);
  } catch (error) {
    say("#funds-message", error.message, true);
    return;
  }
  $("#wallet").replaceChildren(
    el("span", {}, "Available ", el("strong", { "data-field": "wallet-available" }, money(wallet.available))),
    el("span", { class: "muted" }, `locked ${money(wallet.locked)}`),
  );
  $("#intents tbody").replaceChildren(
    ...(page.items.length ? page.items.map(row) : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No deposits yet"))]),
  );
  const sent = page.items.find((i) => i.intent_id === lastSent);
  if (sent) describe(sent);
  const pending = page.items.filter((i) => i.status === "PENDING").length;
  if (pending < pendingBefore) changed(); // one settled: cash moved
  pendingBefore = pending;
  if (pending) pollTimer = setTimeout(refresh, POLL_MS);
}

async function submit(event) {
  event.preventDefault();
  const kind = event.submitter?.value === "withdraw" ? "withdrawals" : "deposits";
  const amount = $("#funds-amount").value.trim();
  say("#funds-message", "sending…");
  for (const b of $("#funds-form").querySelectorAll("button")) b.disabled = true;
  try {
    // The amount goes as the string typed: money is never a binary float.
    const intent = await request(`/v1/funds/${kind}`, {
      method: "POST",
      body: { amount },
      headers: { "X-Idempotency-Key": idempotencyKey() },
    });
    lastSent = intent.intent_id;
    describe(intent);
    $("#funds-amount").value = "";
    pendingBefore += intent.status === "PENDING" ? 1 : 0;
    changed();
    await refresh();
  } catch (error) {
    say("#funds-message", error.message, true);
  } finally {
    for (const b of $("#funds-form").querySelectorAll("button")) b.disabled = false;
  }
}

/** Wire the form; `onChange()` runs when cash may have moved (a deposit credited, say). */
export function init(onChange) {
  changed = onChange;
  $("#funds-form").addEventListener("submit", submit);
}

export function stop() {
  clearTimeout(pollTimer);
  pendingBefore = 0;
  lastSent = null;
}
