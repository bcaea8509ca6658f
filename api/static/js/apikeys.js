// API keys: create one (its secret shown this once), list them, revoke one.

import { request } from "./api.js";
import { $, el, say, timeOf } from "./dom.js";

function row(key) {
  const revoke = key.revoked_at
    ? el("span", { class: "muted" }, "revoked")
    : el("button", { type: "button", class: "link", onclick: () => revokeKey(key.id) }, "Revoke");
  return el("tr", { "data-key-id": String(key.id), "data-revoked": key.revoked_at ? "1" : "0" },
    el("td", {}, key.name),
    el("td", {}, el("code", {}, key.prefix)),
    el("td", { title: key.created_at }, timeOf(key.created_at)),
    el("td", {}, key.last_used_at ? timeOf(key.last_used_at) : "never"),
    el("td", {}, revoke),
  );
}

/** Load and draw the caller's keys. */
export async function refresh() {
  try {
    const keys = await request("/v1/api-keys");
    $("#keys tbody").replaceChildren(
      ...(keys.length ? keys.map(row) : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No keys"))]),
    );
  } catch (error) {
    say("#key-message", error.message, true);
  }
}

async function revokeKey(id) {
  say("#key-message", "");
  try {
    await request(`/v1/api-keys/${id}`, { method: "DELETE" });
  } catch (error) {
    say("#key-message", error.message, true);
  }
  await refresh();
}

async function create(event) {
  event.preventDefault();
  say("#key-message", "");
  hideSecret();
  try {
    const made = await request("/v1/api-keys", { method: "POST", body: { name: $("#key-name").value.trim() } });
    $("#key-secret").textContent = made.key;
    $("#key-created").hidden = false;
    $("#key-name").value = "";
  } catch (error) {
    say("#key-message", error.message, true);
  }
  await refresh();
}

/** The secret leaves the page when another key is made or the session ends. */
export function hideSecret() {
  $("#key-secret").textContent = "";
  $("#key-created").hidden = true;
}

export function init() {
  $("#key-form").addEventListener("submit", create);
}
