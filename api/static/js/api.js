// The API client: JSON requests with the session's bearer token, renewed once on an expired
// token, and refusals turned into sentences for people (errors.js).

import { OFFLINE, humanMessage } from "./errors.js";
import * as session from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// 401 codes that end the session; any other 401 with a session is an expired or unreadable
// access token, worth one renewal.
const SESSION_OVER = new Set(["session_ended", "refresh_token_reused", "invalid_refresh_token"]);

let onUnauthorized = () => {};

/** Register what to do when the session is over (the server refused it, renewal failed). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function authHeaders() {
  const value = session.accessToken();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

async function envelopeOf(response) {
  try {
    return await response.json();
  } catch {
    return null; // not JSON (a proxy's page): the status alone says enough
  }
}

async function send(path, method, body, headers) {
  const init = { method, headers: { ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "offline", OFFLINE);
  }
}

/** A JSON request to the API; throws ApiError with a sentence for people on a refusal. */
export async function request(path, { method = "GET", body, headers = {} } = {}) {
  const hadSession = session.active();
  if (hadSession && session.stale()) await session.renew();
  let response = await send(path, method, body, headers);
  let envelope = response.ok ? null : await envelopeOf(response);
  const code = envelope?.error ?? null;
  if (response.status === 401 && hadSession && code === "unauthenticated") {
    // Sent again with the same headers (an order keeps its idempotency key), once.
    if (await session.renew()) {
      response = await send(path, method, body, headers);
      envelope = response.ok ? null : await envelopeOf(response);
    }
  }
  const over = SESSION_OVER.has(envelope?.error) || envelope?.error === "unauthenticated";
  if (response.status === 401 && hadSession && over) {
    onUnauthorized(envelope?.error);
  }
  if (!response.ok) throw new ApiError(response.status, envelope?.error ?? null, humanMessage(response.status, envelope));
  return response.status === 204 ? null : response.json();
}

/** Log in with email, password and (once 2FA is set up) a TOTP code; keeps the session. */
export async function login(email, password, totpCode) {
  const body = { email, password };
  if (totpCode) body.totp_code = totpCode;
  const answer = await request("/v1/auth/login", { method: "POST", body });
  await session.begin(answer, email);
  return answer;
}

/** End the session on the server (best effort), then forget it here. */
export async function logout() {
  if (session.active()) {
    try {
      await request("/v1/auth/logout", { method: "POST" });
    } catch {
      // Already ended, or the server is away: the tokens are dropped here all the same.
    }
  }
  session.forget();
}

/** A fresh idempotency key; crypto.randomUUID needs a secure context, so fall back to random bytes. */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
