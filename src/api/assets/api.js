// API calls: the operator token (kept in this tab's sessionStorage only), reads
// that carry it, and the POST of an operator action with its idempotency key.

import { $ } from "./dom.js";

const TOKEN_KEY = "failover-orchestrator.operator-token";

/** The operator token of this tab; setting or clearing it shows or hides "Forget operator token". */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (t) => { sessionStorage.setItem(TOKEN_KEY, t); $("token-forget").hidden = false; },
  clear: () => { sessionStorage.removeItem(TOKEN_KEY); $("token-forget").hidden = true; },
};

/** fetch() that sends the operator token when there is one (reads stay same-origin). */
export function apiFetch(url, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  const t = token.get();
  if (t && !headers.Authorization) headers.Authorization = `Bearer ${t}`;
  return fetch(url, Object.assign({}, opts, { headers, cache: "no-store" }));
}

/** Sends an operator action: JSON body, the given token, and the confirmation's idempotency key. */
export function postAction(url, body, tok, key) {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${tok}`, "Idempotency-Key": key },
    body: JSON.stringify(body),
  });
}

/** An idempotency key per confirmation, so a retried click applies once. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The route does not exist in this build (rather than "no such region" from a real handler). */
export const routeMissing = (status, body) =>
  status === 405 || (status === 404 && (!body || typeof body.error !== "string" || body.error.startsWith("no such route")));
