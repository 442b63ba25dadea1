// The events timeline: newest first, filtered by region and kind, paged with
// "Load older events". Nothing polls: events are re-read when the status changes
// in a way that makes new events likely (debounced), after an operator action,
// and after the stream reconnects.

import { apiFetch } from "./api.js";
import { $, chip, h, patch } from "./dom.js";
import { clock, dayClock, weightsText } from "./format.js";

// Page size of the events timeline; `?events_page=N` (1–500) overrides it, e.g. to see "load more" early.
const EVENTS_PAGE = (() => {
  const n = Number(new URLSearchParams(location.search).get("events_page"));
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : 25;
})();
const EVENTS_DEBOUNCE_MS = 800;
const EVENTS_MAX_WAIT_MS = 3000;

const timeline = {
  events: [],
  ids: new Set(),
  nextBefore: null,
  sig: "",
  timer: null,
  firstAsk: 0,
  loading: false,
};

/** What makes new events likely: health, weights, plan, alarms, drill, leadership. */
function signature(st) {
  return JSON.stringify([
    (st.regions || []).map((r) => [r.name, r.health, r.weight, r.maintenance, (r.checks || []).map((c) => c.health)]),
    st.plan && [st.plan.id, st.plan.verified_at, st.plan.recorded],
    (st.alarms || []).map((a) => [a.kind, a.region, a.since]),
    st.drill ? JSON.stringify(st.drill) : null,
    st.leadership,
  ]);
}

/** Re-reads the events when the snapshot's signature changed (at once the first time, debounced after). */
export function scheduleEventsOnChange(st) {
  const sig = signature(st);
  if (sig === timeline.sig) return;
  const first = timeline.sig === "";
  timeline.sig = sig;
  if (first) { refreshEvents(true); return; }
  // Debounce (changes come in bursts) but never wait longer than EVENTS_MAX_WAIT_MS.
  const now = Date.now();
  if (!timeline.timer) timeline.firstAsk = now;
  clearTimeout(timeline.timer);
  const wait = Math.min(EVENTS_DEBOUNCE_MS, Math.max(0, timeline.firstAsk + EVENTS_MAX_WAIT_MS - now));
  timeline.timer = setTimeout(() => { timeline.timer = null; refreshEvents(false); }, wait);
}

function eventsUrl(before) {
  const q = new URLSearchParams({ limit: String(EVENTS_PAGE) });
  const region = $("f-region").value;
  const kind = $("f-kind").value;
  if (region) q.set("region", region);
  if (kind) q.set("kind", kind);
  if (before) q.set("before", before);
  return `/api/v1/events?${q}`;
}

const unavailable = (resp, body) => `Events unavailable: ${body && body.error ? body.error : `HTTP ${resp.status}`}`;

/** Reads the newest page; `reset` drops what is shown (filters changed), else merges by id. */
export async function refreshEvents(reset) {
  const filterKey = `${$("f-region").value}|${$("f-kind").value}`;
  try {
    const resp = await apiFetch(eventsUrl(null));
    const body = await resp.json().catch(() => null);
    if (filterKey !== `${$("f-region").value}|${$("f-kind").value}`) return; // filters changed meanwhile
    if (resp.status === 401 || resp.status === 403) {
      $("events-msg").textContent = `These events need another token (HTTP ${resp.status}): ${body && body.error ? body.error : "no token or a refused one"}. Sign in with a token whose role may read them.`;
      return;
    }
    if (!resp.ok) { $("events-msg").textContent = unavailable(resp, body); return; }
    const page = body.events || [];
    const fresh = page.filter((e) => !timeline.ids.has(e.id));
    // A full page of unknown events means there may be a gap: start over from this page.
    if (reset || timeline.events.length === 0 || fresh.length === page.length) {
      timeline.events = page;
      timeline.nextBefore = body.next_before;
    } else {
      timeline.events = fresh.concat(timeline.events);
    }
    timeline.ids = new Set(timeline.events.map((e) => e.id));
    $("events-msg").textContent = timeline.events.length ? "" : "No events match.";
    drawEvents(reset ? new Set() : new Set(fresh.map((e) => e.id)));
  } catch (e) {
    $("events-msg").textContent = `Events unavailable: ${e.message || e}`;
  }
}

/** Appends the next older page ("Load older events"). */
async function loadOlder() {
  if (!timeline.nextBefore || timeline.loading) return;
  timeline.loading = true;
  const btn = $("events-more");
  btn.disabled = true;
  try {
    const resp = await apiFetch(eventsUrl(timeline.nextBefore));
    const body = await resp.json().catch(() => null);
    if (!resp.ok) { $("events-msg").textContent = unavailable(resp, body); return; }
    const older = (body.events || []).filter((e) => !timeline.ids.has(e.id));
    timeline.events = timeline.events.concat(older);
    for (const e of older) timeline.ids.add(e.id);
    timeline.nextBefore = body.next_before;
    drawEvents(new Set());
  } catch (e) {
    $("events-msg").textContent = `Events unavailable: ${e.message || e}`;
  } finally {
    timeline.loading = false;
    btn.disabled = false;
  }
}

/** One event: time, kind, message with a short extra (weights, new health, alarm state), and its details as JSON. */
function eventLine(e, isNew) {
  const d = e.details || {};
  let extra = "";
  if (e.kind === "plan" && d.weights) extra = h("span", { class: "ev-weights" }, `→ ${weightsText(d.weights)}`);
  if (e.kind === "transition" && d.to) extra = chip(d.to, `now ${d.to}`);
  if (e.kind === "alarm") extra = d.cleared_at ? chip("up", `cleared ${clock(d.cleared_at)}`) : chip("down", "active");
  const kind = e.kind ?? "";
  return h("li", { class: `ev ev-${kind}${isNew ? " ev-new" : ""}`, "data-kind": kind },
    h("time", { datetime: e.at ?? "", title: e.at ?? "" }, dayClock(e.at)),
    h("span", { class: `tag kind-${kind}` }, kind),
    h("div", { class: "ev-body" }, h("details", null,
      h("summary", null, h("span", { class: "ev-msg" }, e.message ?? ""), " ", extra),
      h("pre", null, JSON.stringify(d, null, 2)))));
}

function drawEvents(newIds) {
  patch($("events"), timeline.events.map((e) => eventLine(e, newIds.has(e.id))));
  $("events-more").hidden = !timeline.nextBefore;
}

/** The region filter's options, kept when the selected region still exists. */
export function fillRegionFilter(regions) {
  const sel = $("f-region");
  const current = sel.value;
  sel.replaceChildren(h("option", { value: "" }, "all"), ...regions.map((r) => h("option", { value: r.name }, r.name)));
  sel.value = regions.some((r) => r.name === current) ? current : "";
}

/** Wires the filters and "Load older events". */
export function initEvents() {
  $("f-region").addEventListener("change", () => refreshEvents(true));
  $("f-kind").addEventListener("change", () => refreshEvents(true));
  $("event-filters").addEventListener("submit", (e) => e.preventDefault());
  $("events-more").addEventListener("click", loadOlder);
}
