// The identity check: the form while nothing (or a rejected one) is on file, else its status.
// A simulated provider reviews a submission in the background, so a pending one is polled.

import { request } from "./api.js";
import { $, say } from "./dom.js";

const POLL_MS = 1500;
const SENTENCES = {
  NONE: "Not submitted yet. Fill in your details to trade and withdraw.",
  PENDING: "Submitted; under review…",
  VERIFIED: "Verified. You can trade and withdraw.",
};

let pollTimer = null;
let changed = () => {};

function render(record) {
  const status = record ? record.status : "NONE";
  const node = $("#kyc-status");
  const before = node.dataset.status;
  node.dataset.status = status;
  node.className = `status-${status}`;
  node.textContent = status === "REJECTED"
    ? `Rejected: ${record.rejection_reason || "no reason given"}. Correct your details and submit again.`
    : SENTENCES[status] || status;
  $("#kyc-form").hidden = !(status === "NONE" || status === "REJECTED");
  if (before && before !== status) changed(status);
}

/** Read the caller's KYC status and draw it; polls while the review is pending. */
export async function refresh() {
  clearTimeout(pollTimer);
  try {
    render(await request("/v1/kyc"));
  } catch (error) {
    if (error.status === 404) render(null);
    else say("#kyc-error", error.message, true);
  }
  if ($("#kyc-status").dataset.status === "PENDING") pollTimer = setTimeout(refresh, POLL_MS);
}

async function submit(event) {
  event.preventDefault();
  say("#kyc-error", "");
  $("#kyc-submit").disabled = true;
  try {
    await request("/v1/kyc", {
      method: "POST",
      body: {
        full_name: $("#kyc-name").value.trim(),
        date_of_birth: $("#kyc-dob").value,
        national_id: $("#kyc-id").value.trim(),
        address: $("#kyc-address").value.trim(),
      },
    });
    await refresh();
  } catch (error) {
    say("#kyc-error", error.message, true);
  } finally {
    $("#kyc-submit").disabled = false;
  }
}

/** Wire the form; `onChange(status)` runs when the status moves (say, to VERIFIED). */
export function init(onChange) {
  changed = onChange;
  $("#kyc-form").addEventListener("submit", submit);
}

export function stop() {
  clearTimeout(pollTimer);
  $("#kyc-status").dataset.status = "";
}
