// Sentences for people from the API's error envelope ({"error": code, "detail": sentence}).
// The envelope's detail is written for programmers and may quote validation internals or a
// token library's complaint; the page shows these sentences instead. With `withDetail` the
// server's own sentence is added where it carries the numbers a person needs (a limit, a size).

const SESSION_ENDED = "Your session has ended. Please log in again.";

const SENTENCES = {
  // Logging in and sessions.
  invalid_credentials: "The email or password is not right.",
  totp_required: "Enter the 6-digit code from your authenticator app.",
  invalid_totp: "That code is not right or was already used. Wait for the next code and try again.",
  unauthenticated: SESSION_ENDED,
  session_ended: SESSION_ENDED,
  invalid_refresh_token: SESSION_ENDED,
  refresh_token_reused: "Your session was used from somewhere else, so it was ended to keep your account safe. Please log in again.",
  rate_limited: "Too many attempts in a short time. Wait a minute and try again.",
  rate_limit_unavailable: "Logging in is paused for a moment. Try again in a few seconds.",
  // Signing up and two-factor authentication.
  email_taken: "An account with this email already exists. Log in instead.",
  invalid_email: "That does not look like an email address.",
  weak_password: { text: "Choose a stronger password", withDetail: true },
  totp_enrolled: "Two-factor authentication is already set up for this account.",
  totp_not_enrolled: "Start the two-factor setup again.",
  two_factor_required: "Set up two-factor authentication first.",
  forbidden: "Your account cannot do this yet: finish two-factor setup and the identity check first.",
  kyc_required: "Your identity check (KYC) must be verified first.",
  // KYC.
  kyc_submitted: "Your details were already submitted; wait for the review.",
  kyc_not_found: "No identity details submitted yet.",
  invalid_kyc: { text: "Please check your details", withDetail: true },
  // Money.
  insufficient_funds: "Not enough available cash for this.",
  insufficient_shares: "You do not hold enough shares for this sale.",
  invalid_amount: { text: "Enter an amount above zero", withDetail: true },
  fraud_withdrawal_after_deposit: "A new account cannot withdraw this soon after a deposit. Please try again later.",
  // Orders.
  unknown_symbol: "There is no instrument with that symbol.",
  invalid_tick: { text: "The price is not on the instrument's price steps", withDetail: true },
  invalid_lot_size: { text: "The quantity must be a whole number of lots", withDetail: true },
  invalid_quantity: { text: "Enter a quantity of whole shares", withDetail: true },
  price_required: "Enter a limit price for this order type.",
  price_not_allowed: "This order type takes no limit price.",
  trigger_price_required: "Enter a trigger price for this order type.",
  trigger_price_not_allowed: "This order type takes no trigger price.",
  no_price: "This symbol has no price yet; use a limit order.",
  market_closed: "The market is closed now. Try again when it opens.",
  order_value_limit: "The order is worth more than one order may be.",
  order_value_too_large: "The order is worth more than one order may be.",
  order_rate_limit: "Too many orders in a short time. Wait a moment.",
  order_final: "This order is already finished.",
  order_not_found: "That order was not found.",
  idempotency_key_reused: "This request was already sent with other details. Please try again.",
  idempotency_race: "The same request is still being handled. Please try again.",
  client_order_id_reused: "That client order id was already used.",
  // Market data.
  range_too_large: "That is more candles than one chart may load; pick a wider interval.",
  invalid_range: "The chart's time range is not valid.",
  invalid_limit: "The chart asked for too many candles.",
  // API keys and the watchlist.
  api_keys_max: "You have as many API keys as allowed. Revoke one first.",
  too_many_symbols: { text: "The watchlist is full", withDetail: true },
  symbols_required: "Name at least one symbol.",
  not_a_session: "This needs a login, not an API key.",
  // The framework's own.
  malformed_body: "The page sent something the server could not read. Reload the page and try again.",
  body_too_large: "That is too much to send at once.",
  not_found: "That was not found.",
  method_not_allowed: "The page asked for something the server does not offer. Reload the page.",
  internal_error: "Something went wrong on our side. Please try again.",
};

// Names of request fields as a form labels them.
const FIELD_LABELS = {
  email: "email",
  password: "password",
  new_password: "new password",
  current_password: "current password",
  totp_code: "authenticator code",
  code: "authenticator code",
  full_name: "full name",
  date_of_birth: "date of birth",
  national_id: "national id",
  address: "address",
  amount: "amount",
  symbol: "symbol",
  symbols: "symbols",
  quantity: "quantity",
  price: "limit price",
  trigger_price: "trigger price",
  name: "name",
};

const BY_STATUS = {
  401: SESSION_ENDED,
  403: "Your account cannot do this yet.",
  404: "That was not found.",
  409: "That was already done.",
  429: "Too many requests in a short time. Wait a moment and try again.",
};

function listOf(words) {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}

function validationSentence(fields) {
  const names = [...new Set((fields || []).map((f) => FIELD_LABELS[f.field] || null).filter(Boolean))];
  if (!names.length) return "Some of the values entered are not valid. Please check the form.";
  return `Please check the ${listOf(names)}.`;
}

/** A sentence for a refusal: its status and its envelope (or null when the body was not one). */
export function humanMessage(status, body) {
  const code = body && typeof body.error === "string" ? body.error : null;
  if (code === "validation_failed") return validationSentence(body.fields);
  const known = code ? SENTENCES[code] : undefined;
  if (typeof known === "string") return known;
  if (known) {
    const detail = typeof body.detail === "string" ? body.detail : "";
    return detail ? `${known.text}: ${detail}.` : `${known.text}.`;
  }
  if (BY_STATUS[status]) return BY_STATUS[status];
  if (status >= 500) return SENTENCES.internal_error;
  return "The request was refused. Please check the form and try again.";
}

/** A sentence for a request that got no answer at all. */
export const OFFLINE = "The server cannot be reached. Check your connection and try again.";
