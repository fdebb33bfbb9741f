// Building the page from data that came from devices and services: always as text, never as markup.
// Nothing here sets innerHTML, an event handler attribute or a style attribute.

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/gu;

/** Text with control, line-separator and bidi-override characters shown as \uXXXX escapes, so that
 * hostile input can neither hide parts of itself nor reorder what is around it. */
export function visible(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return text.replace(CONTROL, (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** An element: attrs are set with setAttribute (never on* or style), children are nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (/^on/i.test(name) || name === "style") throw new Error(`el(): refusing attribute ${name}`);
    if (name === "href" && !String(value).startsWith("#/")) throw new Error("el(): only in-app links");
    node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return node;
}

/** Replace the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** An in-app link; every path segment is URI-encoded. */
export function link(segments, text, attrs = {}) {
  return el("a", { ...attrs, href: route(segments) }, text);
}

export function route(segments, query = {}) {
  const path = "#/" + segments.map((part) => encodeURIComponent(part)).join("/");
  const params = new URLSearchParams(Object.entries(query).filter(([, value]) => value));
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

export function traceLink(id, text = "trace") {
  return id ? link(["trace", id], text, { class: "trace-link" }) : "";
}

export function deviceLink(subject) {
  return subject ? link(["device", subject], subject, { class: "device-link" }) : "";
}

/** A time as HH:MM:SS.mmm local time, with the full UTC time as the element's title. */
export function timeCell(tag, value) {
  const moment = value === null || value === undefined ? null : new Date(value);
  if (!moment || Number.isNaN(moment.getTime())) return el(tag, { class: "time" }, value ?? "");
  const text = moment.toLocaleTimeString([], { hour12: false }) + "." + String(moment.getMilliseconds()).padStart(3, "0");
  return el(tag, { class: "time", title: moment.toISOString() }, text);
}

export function ago(value) {
  const moment = new Date(value);
  if (value === null || value === undefined || Number.isNaN(moment.getTime())) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - moment.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

export function number(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "" : String(value);
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toLocaleString("en", { maximumFractionDigits: 3 });
}

/** A message in a view, for errors from the API or the network: the rest of the page keeps working. */
export function errorBox(message) {
  return el("p", { class: "error", role: "alert" }, message);
}

/** Run `work` at most once per animation frame, however often `schedule` is called. */
export function frameBatcher(work) {
  let pending = false;
  return function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      work();
    });
  };
}

/** Call `work` once, `delay` ms after the last of a burst of calls. */
export function debounce(work, delay) {
  let timer = null;
  const call = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      work();
    }, delay);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
