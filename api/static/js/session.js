// The session: a short access token and a one-time refresh token, kept in this tab's
// sessionStorage (never in a URL) and renewed before the access token expires.
//
// A refresh token works once: the server ends the whole session when a used one comes back.
// So within a tab every renewal goes through one promise (concurrent calls share it), and a
// session belongs to one tab: a duplicated tab (which copies sessionStorage) finds the
// session's Web Lock taken and asks for its own login instead of sharing the tokens.

const KEY = "broker.session";
const RENEW_AHEAD_MAX_MS = 60_000; // renew this long before expiry, or a fifth of the lifetime
const RENEW_DELAY_MIN_MS = 5_000;

let renewing = null; // the renewal under way, shared by every caller
let renewTimer = null;
let releaseLock = null;
let onEnded = () => {};

function read() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

function write(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function pairOf(answer) {
  const lifetimeMs = answer.expires_in_s * 1000;
  return {
    access: answer.access_token,
    refresh: answer.refresh_token,
    expiresAt: Date.now() + lifetimeMs,
    lifetimeMs,
    twoFactor: Boolean(answer.two_factor),
  };
}

function schedule() {
  clearTimeout(renewTimer);
  const session = read();
  if (!session) return;
  const ahead = Math.min(RENEW_AHEAD_MAX_MS, session.lifetimeMs / 5);
  const delay = Math.max(session.expiresAt - ahead - Date.now(), RENEW_DELAY_MIN_MS);
  renewTimer = setTimeout(() => renew(), delay);
}

/** Register what to do when the session ends by itself (refresh refused): a sentence is given. */
export function whenEnded(handler) {
  onEnded = handler;
}

export const accessToken = () => read()?.access ?? null;
export const email = () => read()?.email ?? "";
export const active = () => read() !== null;

/** Keep a new session from a login's answer; a session this tab held before is let go. */
export async function begin(answer, userEmail) {
  forget();
  write({ ...pairOf(answer), email: userEmail, id: randomId() });
  await claim();
  schedule();
}

/** Replace the tokens of this session (2FA verification answers a new, stronger pair). */
export function replace(answer) {
  const session = read();
  write({ ...session, ...pairOf(answer) });
  schedule();
}

/**
 * Make this tab the session's only holder; false when another tab holds it already (this tab
 * was duplicated from it), and this tab's copy is then forgotten.
 */
export async function claim() {
  const session = read();
  if (!session) return false;
  if (!navigator.locks) return true; // not a secure context: one promise per tab still holds
  const held = await new Promise((resolve) => {
    navigator.locks.request(`broker.session.${session.id}`, { ifAvailable: true }, (lock) => {
      if (!lock) {
        resolve(false);
        return undefined;
      }
      resolve(true);
      return new Promise((release) => {
        releaseLock = release;
      });
    });
  });
  if (!held) sessionStorage.removeItem(KEY);
  else schedule();
  return held;
}

async function exchange(session) {
  let response;
  try {
    response = await fetch("/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
    });
  } catch {
    // No answer: keep the token and try again shortly. If the server did use it, it ends the
    // session on the next try, and the person logs in again; nothing else is at risk.
    renewTimer = setTimeout(() => renew(), RENEW_DELAY_MIN_MS);
    return false;
  }
  if (!response.ok) {
    let code = null;
    try {
      code = (await response.json()).error;
    } catch {
      // not an envelope: the status says enough
    }
    if (read()?.id === session.id) {
      forget();
      onEnded(code);
    }
    return false;
  }
  const answer = await response.json();
  // A logout or another login during the call: the answer belongs to a session let go.
  if (read()?.id !== session.id) return false;
  write({ ...session, ...pairOf(answer) });
  schedule();
  return true;
}

/** Renew the access token with the refresh token; true when a new one is kept. */
export function renew() {
  if (!renewing) {
    const session = read();
    if (!session) return Promise.resolve(false);
    renewing = exchange(session).finally(() => {
      renewing = null;
    });
  }
  return renewing;
}

/** Whether the access token has (nearly) expired, so a request should wait for a renewal. */
export function stale() {
  const session = read();
  return session !== null && session.expiresAt - Date.now() < RENEW_DELAY_MIN_MS;
}

/** Drop the tokens of this tab and let go of the session's lock. */
export function forget() {
  clearTimeout(renewTimer);
  sessionStorage.removeItem(KEY);
  if (releaseLock) releaseLock();
  releaseLock = null;
}
