// API calls: the one token of this tab (kept in sessionStorage only, for reads and
// actions alike), reads that carry it, and the POST of an operator action with its
// idempotency key. Who holds the token and what to do when it is refused is session.js's.

const TOKEN_KEY = "failover-orchestrator.token";

/** The token of this tab: sent with every read and action; never put in a URL. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// Called with the response when a request that carried the token is answered 401 (session.js).
let onRefused = () => {};

/** Sets what happens when the server refuses the tab's token (a 401 to a request that sent it). */
export function whenTokenRefused(fn) {
  onRefused = fn;
}

/** Authorization for `tok` (or the tab's token), merged into `headers`. */
function withToken(headers, tok) {
  const t = tok === undefined ? token.get() : tok;
  return t && !headers.Authorization ? Object.assign(headers, { Authorization: `Bearer ${t}` }) : headers;
}

/** fetch() that sends the tab's token when there is one (`opts.token` overrides it; reads stay same-origin). */
export async function apiFetch(url, opts = {}) {
  const headers = withToken(Object.assign({ Accept: "application/json" }, opts.headers || {}), opts.token);
  const resp = await fetch(url, Object.assign({}, opts, { headers, cache: "no-store" }));
  if (resp.status === 401 && headers.Authorization && opts.token === undefined) onRefused(resp);
  return resp;
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
