// The live stream: the status snapshot pushed over Server-Sent Events
// (`/api/v1/stream`), the live indicator, and a 1 s ticker for relative times
// and the snapshot's age (no network).
//
// EventSource cannot send an Authorization header, and the token never goes in a
// URL: a signed-in page buys a single-use ticket (`POST /api/v1/stream/tickets`, with
// the token) for every connection and opens `/api/v1/stream?ticket=…`. EventSource's
// own reconnection would reuse the spent ticket, so on any error the page closes the
// source and opens a new one itself, with a fresh ticket. Where reads are public and
// the tab holds no token, it opens the stream without one.

import { apiFetch, token } from "./api.js";
import { $, fillRelTimes } from "./dom.js";
import { refreshEvents } from "./events.js";
import { duration } from "./format.js";
import { state } from "./state.js";

const STALE_AFTER_MS = 30000;
const RECONNECT_MS = 1500; // plus up to RECONNECT_JITTER_MS, so many tabs do not come back at once
const RECONNECT_JITTER_MS = 500;
const LIVE_TEXT = {
  live: "live", reconnecting: "reconnecting…", connecting: "connecting…", stale: "live, no update", "signed-out": "signed out",
};

/** The live indicator: live, reconnecting, connecting, live without an update for a while, or signed out. */
export function setLive(mode) {
  if (state.live === mode) return;
  state.live = mode;
  $("live").className = `live ${mode}`;
  $("live-text").textContent = LIVE_TEXT[mode];
}

/**
 * The URL of one stream connection: with a fresh ticket when the tab is signed in, bare
 * where reads are public and it holds no token. Throws (with `retryAfterMs` when the server
 * said) when no ticket was issued; a refused token is handled by api.js (the session ends).
 */
async function streamUrl() {
  if (!(state.principal && state.principal.authenticated && token.get())) return "/api/v1/stream";
  const resp = await apiFetch("/api/v1/stream/tickets", { method: "POST" });
  const body = await resp.json().catch(() => null);
  if (resp.status === 201 && body && typeof body.ticket === "string") {
    return `/api/v1/stream?ticket=${encodeURIComponent(body.ticket)}`;
  }
  const wait = Number(resp.headers.get("Retry-After"));
  throw Object.assign(new Error(`no stream ticket: HTTP ${resp.status}${body && body.error ? ` ${body.error}` : ""}`),
    { retryAfterMs: Number.isFinite(wait) && wait > 0 ? wait * 1000 : 0 });
}

/** Opens the stream and calls `onStatus(snapshot)` for each snapshot, reconnecting for ever. */
export function connect(onStatus) {
  const again = (ms = 0) => setTimeout(open, Math.max(ms, RECONNECT_MS) + Math.random() * RECONNECT_JITTER_MS);
  async function open() {
    let url;
    try {
      url = await streamUrl();
    } catch (e) {
      setLive("reconnecting");
      again(e.retryAfterMs);
      return;
    }
    const es = new EventSource(url);
    es.addEventListener("open", () => {
      if (state.live === "reconnecting") refreshEvents(false); // catch up on what we missed
    });
    es.addEventListener("status", (ev) => {
      let st;
      try { st = JSON.parse(ev.data); } catch (_) { return; }
      state.receivedAt = Date.now();
      const gen = Date.parse(st.generated_at);
      if (Number.isFinite(gen)) state.skewMs = Date.now() - gen;
      setLive("live");
      onStatus(st);
    });
    es.addEventListener("error", () => {
      // Never let EventSource retry by itself: its URL holds a spent ticket.
      es.close();
      setLive("reconnecting");
      again();
    });
  }
  open();
}

/** Once a second: relative times and the age of the last snapshot. */
export function tick() {
  fillRelTimes(document.body);
  if (state.receivedAt) {
    const age = Date.now() - state.receivedAt;
    $("updated").textContent = `updated ${duration(age)} ago`;
    if (state.live === "live" && age > STALE_AFTER_MS) setLive("stale");
  }
}
