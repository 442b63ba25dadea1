// The dashboard's entry module (loaded by index.html with <script type="module">):
// signs in when reads need a token, then renders each status snapshot from the
// stream and wires the page's controls.
//
// Hand-written ES modules, no library, no build step, served from the binary:
//   format.js   words, numbers, times and colours from the status
//   dom.js      element builders (`h`, `svg`) and change-only updates (`patch`)
//   state.js    the last snapshot and the server's clock
//   api.js      the tab's token, reads, and the POST of an action
//   session.js  sign-in and sign-out, whoami, what the page may show
//   banners.js  banners, tab title, traffic split
//   coordination.js  header (leader, epoch, etcd, quorum), vantage chips, follower lock
//   regions.js  region cards          charts.js  latency and lag charts
//   plan.js     decision, plan, drill  events.js  the events timeline
//   dialogs.js  the confirmation dialog; actions.js  what it confirms
//   stream.js   Server-Sent Events (a fresh ticket per connection), the live indicator, the 1 s ticker
// Text from the server only ever reaches the page as text nodes or attribute
// values: no module assigns innerHTML.

import { initActions, parseSteps } from "./actions.js";
import { renderBanners, renderSplit } from "./banners.js";
import { lockActions, renderHeader } from "./coordination.js";
import { initDialogs } from "./dialogs.js";
import { $ } from "./dom.js";
import { initEvents, scheduleEventsOnChange } from "./events.js";
import { renderDecision, renderDrill } from "./plan.js";
import { renderRegions } from "./regions.js";
import { startSession } from "./session.js";
import { state } from "./state.js";
import { connect, tick } from "./stream.js";

const healthByRegion = new Map();

/** Tells screen-reader users when a region's health changes (not at every snapshot). */
function announceHealthChanges(st) {
  const msgs = [];
  for (const r of st.regions || []) {
    const before = healthByRegion.get(r.name);
    if (before && before !== r.health) msgs.push(`${r.name} is now ${r.health}, weight ${r.weight}%`);
    healthByRegion.set(r.name, r.health);
  }
  if (msgs.length) $("sr-announce").textContent = msgs.join(". ");
}

/** Renders one snapshot. */
function render(st) {
  state.status = st;
  renderHeader(st);
  renderBanners(st);
  renderSplit(st);
  renderRegions(st);
  renderDecision(st);
  renderDrill(st);
  lockActions(st); // after every part that holds an action button is rendered
  announceHealthChanges(st);
  scheduleEventsOnChange(st);
}

initEvents();
initActions();
initDialogs();

// A hook for the end-to-end test; not used by the page.
window.__dashboard = { parseSteps };

setInterval(tick, 1000);
// Nothing is read before the session allows it: signed in, or reads public.
startSession().then(() => {
  $("board").hidden = false;
  connect(render);
}, (e) => {
  $("signin").hidden = false;
  $("signin-error").textContent = `Could not reach the orchestrator: ${e.message || e}. Reload the page to try again.`;
  $("signin-error").hidden = false;
});
