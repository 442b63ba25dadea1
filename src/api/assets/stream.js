// The live stream: the status snapshot pushed over Server-Sent Events
// (`/api/v1/stream`), the live indicator, and a 1 s ticker for relative times
// and the snapshot's age (no network).

import { $, fillRelTimes } from "./dom.js";
import { refreshEvents } from "./events.js";
import { duration } from "./format.js";
import { state } from "./state.js";

const STALE_AFTER_MS = 30000;
const LIVE_TEXT = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…", stale: "live, no update" };

/** The live indicator: live, reconnecting, connecting, or live without an update for a while. */
function setLive(mode) {
  if (state.live === mode) return;
  state.live = mode;
  $("live").className = `live ${mode}`;
  $("live-text").textContent = LIVE_TEXT[mode];
}

/** Opens the stream and calls `onStatus(snapshot)` for each snapshot. */
export function connect(onStatus) {
  // EventSource reconnects by itself after an error; we only show the state.
  const es = new EventSource("/api/v1/stream");
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
    setLive("reconnecting");
    // A CLOSED source (e.g. a non-200 answer) does not retry by itself: start a new one.
    if (es.readyState === EventSource.CLOSED) setTimeout(() => connect(onStatus), 3000);
  });
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
