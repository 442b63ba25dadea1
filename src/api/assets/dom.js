// DOM helpers. The page never parses markup: every element is made with
// `document.createElement` (through `h` and `svg`) and every piece of text is a
// text node, so a region name or an error message from the server is shown as
// text whatever it contains.
//
// The stream can push ~4 snapshots a second, so `patch` replaces an element's
// children only when the new ones differ: hover, text selection and open
// <details> stay put while nothing changes.

import { HEALTH_ICON, duration, hcls } from "./format.js";
import { serverNow } from "./state.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** `document.getElementById`. */
export const $ = (id) => document.getElementById(id);

/** Appends children: nodes as they are, anything else as text; null, false and "" are skipped; arrays are flattened. */
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === "") continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Sets attributes (null and false are left out, true is an empty attribute; a
 * function is an event listener, `onclick` → "click"; `style` is an object of CSS
 * properties, set through the CSSOM so that a Content-Security-Policy without
 * 'unsafe-inline' allows it) and appends children.
 */
function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "style") {
      if (typeof v !== "object") throw new TypeError("h(): style takes an object of CSS properties, not a string");
      for (const [prop, value] of Object.entries(v)) el.style.setProperty(prop, String(value));
    } else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** An HTML element: `h("p", { class: "muted" }, "text", h("b", null, name))`. */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** An SVG element, same arguments as `h`. */
export const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

/** Replaces the children of `el` (same children as `h`). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Replaces the children of `el` with `children` only when they differ from what
 * it shows (compared as nodes, before relative times are filled in); returns
 * whether it did.
 */
export function patch(el, ...children) {
  const next = document.createElement("div");
  append(next, children);
  if (el.__shown && el.__shown.isEqualNode(next)) return false;
  el.__shown = next.cloneNode(true);
  el.replaceChildren(...next.childNodes);
  fillRelTimes(el);
  return true;
}

/** A state chip: icon + word, so the state never depends on colour alone. */
export const chip = (health, text) =>
  h("span", { class: `state state-${hcls(health)}` }, `${HEALTH_ICON[hcls(health)]} ${text ?? health ?? "unknown"}`);

/** A relative time ("for 2 min 3 s") that the 1 s ticker keeps current; nothing without a time. */
export const rel = (t, prefix = "", suffix = "") =>
  t ? h("span", { "data-since": t, "data-prefix": prefix, "data-suffix": suffix }) : "";

/** Fills every relative time under `root` (see `rel`). */
export function fillRelTimes(root) {
  const now = serverNow();
  for (const el of root.querySelectorAll("[data-since]")) {
    const t = Date.parse(el.dataset.since);
    el.textContent = Number.isNaN(t) ? "" : `${el.dataset.prefix ?? ""}${duration(now - t)}${el.dataset.suffix ?? ""}`;
  }
}
