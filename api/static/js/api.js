// The API client: the bearer token (kept in sessionStorage, never in a URL) and JSON requests.

const TOKEN_KEY = "broker.token";
const EMAIL_KEY = "broker.email";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function sessionEmail() {
  return sessionStorage.getItem(EMAIL_KEY) || "";
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EMAIL_KEY);
}

let onUnauthorized = () => {};

/** Register what to do when the API answers 401 (the token expired or was revoked). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function authHeaders() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status alone says enough.
  }
  if (body && typeof body.detail === "string") return new ApiError(response.status, body.error, body.detail);
  if (body && Array.isArray(body.detail)) {
    // FastAPI's validation errors: name the fields and why.
    const reasons = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`);
    return new ApiError(response.status, "invalid_request", reasons.join("; "));
  }
  return new ApiError(response.status, null, `HTTP ${response.status}`);
}

/** A JSON request to the API; throws ApiError with the server's reason on a non-2xx answer. */
export async function request(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && token()) onUnauthorized();
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** Log in with email, password and TOTP code; keeps the token for this browser tab. */
export async function login(email, password, totpCode) {
  const body = { email, password };
  if (totpCode) body.totp_code = totpCode;
  const answer = await request("/v1/auth/login", { method: "POST", body });
  sessionStorage.setItem(TOKEN_KEY, answer.access_token);
  sessionStorage.setItem(EMAIL_KEY, email);
  return answer;
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
