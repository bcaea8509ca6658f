// Small DOM helpers shared by the views.

export const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "up", "down" or "" for a signed decimal string (the API sends decimals as strings). */
export function signClass(decimal) {
  if (decimal === null || decimal === undefined || decimal === "") return "";
  if (decimal.startsWith("-")) return "down";
  return /[1-9]/.test(decimal) ? "up" : "";
}

/** Show a decimal string as the API sent it; "—" when absent. */
export const show = (decimal) => (decimal === null || decimal === undefined ? "—" : decimal);

export function timeOf(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "";
}

/** Show one of the page's views (the elements of class "view") and hide the others. */
export function showView(id) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== id;
}

/** Put a sentence in a message element; `error` picks the error style. */
export function say(selector, text, error = false) {
  const node = $(selector);
  node.textContent = text;
  node.classList.toggle("error", error);
}
