// Exact decimal arithmetic for money shown in the page: amounts as BigInt ten-thousandths (the
// API's NUMERIC(18,4)), never binary floats. Only what the portfolio needs: add, subtract,
// multiply by whole shares, a percentage, and text.

const PLACES = 4;
const ONE = 10n ** BigInt(PLACES);
const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Ten-thousandths of a decimal string ("1520.45" -> 15204500n); null when not a decimal. */
export function parse(text) {
  if (text === null || text === undefined) return null;
  const match = DECIMAL.exec(String(text).trim());
  if (!match) return null;
  const [, sign, whole, fraction = ""] = match;
  // The API sends at most four places; more could only come from a bug, cut rather than guessed.
  const units = BigInt(whole) * ONE + BigInt(fraction.slice(0, PLACES).padEnd(PLACES, "0"));
  return sign ? -units : units;
}

/** `units` divided by `divisor`, rounded half to even (as the server rounds money). */
function divideRounded(units, divisor) {
  const negative = units < 0n !== divisor < 0n;
  const n = units < 0n ? -units : units;
  const d = divisor < 0n ? -divisor : divisor;
  let q = n / d;
  const twice = (n % d) * 2n;
  if (twice > d || (twice === d && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

/** Text with exactly `places` decimals (at most four), rounded half to even. */
export function format(units, places = 2) {
  if (units === null || units === undefined) return "—";
  const scaled = divideRounded(units, 10n ** BigInt(PLACES - places));
  const sign = scaled < 0n ? "-" : "";
  const digits = (scaled < 0n ? -scaled : scaled).toString().padStart(places + 1, "0");
  if (!places) return sign + digits;
  return `${sign}${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

/** A price as the exchange quotes it: at least two decimals, no trailing zeros past them. */
export function formatPrice(units) {
  if (units === null || units === undefined) return "—";
  let text = format(units, PLACES);
  while (/\.\d{3,}$/.test(text) && text.endsWith("0")) text = text.slice(0, -1);
  return text;
}

/** `units` times a whole number of shares. */
export const times = (units, quantity) => units * BigInt(quantity);

/** `part` as a percentage of `whole`, in ten-thousandths of a percent; null for a zero whole. */
export function percent(part, whole) {
  if (part === null || whole === null || whole === 0n) return null;
  return divideRounded(part * 100n * ONE, whole);
}

/** The sum of the known amounts; null when none is known (so "no data" never shows as zero). */
export function sumKnown(amounts) {
  const known = amounts.filter((a) => a !== null && a !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0n) : null;
}

/** "up", "down" or "" by sign. */
export function signOf(units) {
  if (units === null || units === undefined || units === 0n) return "";
  return units > 0n ? "up" : "down";
}
