// Charts, as inline SVG drawn by hand: the probe latency of a region's checks
// (from the status), and the replication lag history of a standby (from the lag
// endpoint, read at most every LAG_REFRESH_MS and only while shown).

import { apiFetch } from "./api.js";
import { h, patch, svg } from "./dom.js";
import { bytes, clock, ms, seconds } from "./format.js";
import { serverNow } from "./state.js";

const LAG_REFRESH_MS = 15000;
const LAG_WINDOW_MS = 30 * 60 * 1000;
const LAG_STEP_S = 15;

// Layer styles in the latency chart: distinct by colour *and* dash pattern.
const LAYER_STYLE = {
  app: { colour: "var(--line-app)", dash: "", width: 2 },
  middleware: { colour: "var(--line-mw)", dash: "6 3", width: 1.6 },
  infra: { colour: "var(--line-infra)", dash: "2 3", width: 1.6 },
};

const W = 360;
const H = 140;
const M = { l: 44, r: 8, t: 18, b: 20 };

// Whether the lag endpoint exists ("unknown" → "probing" → "present" | "absent"), and what it answered per region.
const lag = { api: "unknown", fetchedAt: new Map(), points: new Map() };

const axis = (x, y, text, anchor) => svg("text", { class: "axis", x, y, "text-anchor": anchor }, text);
const gridLine = (y) => svg("line", { class: "grid", x1: M.l, x2: W - M.r, y1: y, y2: y });

/** A chart's content: its caption, then either a message or the drawing. */
const caption = (title, note) => h("figcaption", null, title, note ? [" ", h("span", { class: "muted" }, note)] : "");
const message = (title, text) => [caption(title), h("p", { class: "muted small" }, text)];

/** Probe latency of every check of a region, log scale, failures as red crosses. */
export function latencyChart(r) {
  const series = (r.checks || []).map((c) => ({
    name: c.name, layer: c.layer,
    pts: (c.recent || []).map(([t, v, o]) => [Date.parse(t), Number(v), o]).filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)),
  }));
  const all = series.flatMap((s) => s.pts);
  if (all.length === 0) return message("Probe latency", "No probes yet.");
  const t1 = Math.max(...all.map((p) => p[0]));
  const t0 = Math.min(Math.min(...all.map((p) => p[0])), t1 - 10000);
  const vals = all.map((p) => Math.max(p[1], 0.01));
  let lo = Math.floor(Math.log10(Math.min(...vals)));
  let hi = Math.ceil(Math.log10(Math.max(...vals)));
  if (hi <= lo) hi = lo + 1;
  lo = Math.max(lo, -2);
  const x = (t) => M.l + ((t - t0) / (t1 - t0 || 1)) * (W - M.l - M.r);
  const y = (v) => {
    const l = Math.log10(Math.max(v, 10 ** lo));
    return H - M.b - ((l - lo) / (hi - lo)) * (H - M.t - M.b);
  };
  const parts = [];
  // Decade grid lines with labels.
  for (let d = lo; d <= hi; d += 1) {
    const v = 10 ** d;
    parts.push(gridLine(y(v).toFixed(1)), axis(M.l - 4, (y(v) + 3).toFixed(1), v >= 1000 ? `${v / 1000} s` : `${v} ms`, "end"));
  }
  const span = (t1 - t0) / 1000;
  parts.push(axis(M.l, H - 5, `−${Math.round(span)} s`), axis(W - M.r, H - 5, clock(t1), "end"));
  const failed = [];
  const degraded = [];
  for (const s of series) {
    const st = LAYER_STYLE[s.layer] || LAYER_STYLE.infra;
    // The line joins successful probes; a failed probe breaks it so a gap shows.
    let d = "";
    let pen = false;
    for (const [t, v, o] of s.pts) {
      if (o === "failed") { failed.push([t, v]); pen = false; continue; }
      if (o === "degraded") degraded.push([t, v]);
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d) parts.push(svg("path", { d, fill: "none", stroke: st.colour, "stroke-width": st.width, "stroke-dasharray": st.dash }));
  }
  for (const [t, v] of degraded) parts.push(svg("circle", { class: "pt-degraded", cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: "2.5" }));
  for (const [t, v] of failed) {
    const cx = x(t);
    const cy = y(v);
    parts.push(svg("path", { class: "pt-failed", d: `M${(cx - 3).toFixed(1)},${(cy - 3).toFixed(1)}l6,6m0,-6l-6,6` }));
  }
  const legend = series.map((s) => {
    const st = LAYER_STYLE[s.layer] || LAYER_STYLE.infra;
    const last = s.pts[s.pts.length - 1];
    return h("li", null,
      svg("svg", { width: "22", height: "8", "aria-hidden": "true" },
        svg("line", { x1: "0", x2: "22", y1: "4", y2: "4", stroke: st.colour, "stroke-width": st.width + 0.4, "stroke-dasharray": st.dash })),
      `${s.layer ?? ""}/${s.name ?? ""} ${last ? ms(last[1]) : "–"}`);
  });
  if (failed.length) {
    legend.push(h("li", null, svg("svg", { width: "10", height: "10", "aria-hidden": "true" }, svg("path", { class: "pt-failed", d: "M2,2l6,6m0,-6l-6,6" })),
      `${failed.length} failed`));
  }
  if (degraded.length) {
    legend.push(h("li", null, svg("svg", { width: "10", height: "10", "aria-hidden": "true" }, svg("circle", { class: "pt-degraded", cx: "5", cy: "5", r: "3" })),
      `${degraded.length} slow`));
  }
  const summary = `probe latency of ${r.name} over the last ${Math.round(span)} seconds: ` +
    series.map((s) => `${s.layer} ${s.name} ${s.pts.length ? ms(s.pts[s.pts.length - 1][1]) : "no data"}`).join(", ") +
    (failed.length ? `; ${failed.length} failed probes` : "");
  return [
    caption("Probe latency", "(log scale)"),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary }, parts),
    h("ul", { class: "chart-legend" }, legend),
  ];
}

/** Lag history of a standby: asks the lag endpoint; hidden when it answers 404. */
export function updateLagChart(r, el) {
  if (r.role === "primary" || lag.api === "absent") { el.hidden = true; return; }
  if (lag.api === "probing") return; // the first request decides whether the endpoint exists
  const last = lag.fetchedAt.get(r.name) || 0;
  if (Date.now() - last > LAG_REFRESH_MS) {
    lag.fetchedAt.set(r.name, Date.now());
    fetchLag(r.name).then(() => drawLag(r.name, el));
  } else {
    drawLag(r.name, el);
  }
}

async function fetchLag(name) {
  const first = lag.api === "unknown";
  if (first) lag.api = "probing";
  const since = new Date(serverNow() - LAG_WINDOW_MS).toISOString();
  try {
    const resp = await apiFetch(`/api/v1/regions/${encodeURIComponent(name)}/lag?since=${encodeURIComponent(since)}&step=${LAG_STEP_S}`);
    if (resp.status === 404 || resp.status === 405) {
      // The endpoint does not exist in this build: hide every lag chart, ask no more.
      lag.api = "absent";
      return;
    }
    lag.api = "present";
    if (!resp.ok) { lag.points.set(name, { error: `HTTP ${resp.status}` }); return; }
    const body = await resp.json();
    lag.points.set(name, { points: Array.isArray(body.points) ? body.points : [] });
  } catch (e) {
    if (first) lag.api = "unknown";
    lag.points.set(name, { error: String(e.message || e) });
  }
}

/** One panel of the lag chart: a line from 0 to its maximum, labelled. */
function lagPanel(pts, idx, top, fmt, label, t0, t1) {
  const half = (H - M.t - M.b) / 2 - 4;
  const max = Math.max(...pts.map((p) => (Number.isFinite(p[idx]) ? p[idx] : 0)), idx === 1 ? 0.001 : 1);
  const x = (t) => M.l + ((t - t0) / (t1 - t0)) * (W - M.l - M.r);
  const y = (v) => top + half - (Math.max(0, v) / max) * half;
  let d = "";
  let pen = false;
  for (const p of pts) {
    if (!Number.isFinite(p[idx])) { pen = false; continue; }
    d += `${pen ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[idx]).toFixed(1)}`;
    pen = true;
  }
  return [gridLine(top + half), gridLine(top), axis(M.l - 4, top + 4, fmt(max), "end"), axis(M.l + 4, top + 10, label),
    svg("path", { d, fill: "none", stroke: "var(--line-app)", "stroke-width": "1.8" })];
}

function drawLag(name, el) {
  const got = lag.points.get(name);
  if (lag.api !== "present" || !got) { el.hidden = true; return; }
  el.hidden = false;
  if (got.error) { patch(el, message("Replication lag", `History unavailable: ${got.error}`)); return; }
  const pts = got.points.map((p) => [Date.parse(p.at), Number(p.seconds), Number(p.bytes)]).filter((p) => Number.isFinite(p[0]));
  if (pts.length === 0) { patch(el, message("Replication lag", "No lag samples in the last 30 min.")); return; }
  const t0 = Math.min(...pts.map((p) => p[0]));
  const t1 = Math.max(...pts.map((p) => p[0]), t0 + 1000);
  const half = (H - M.t - M.b) / 2 - 4;
  const lastP = pts[pts.length - 1];
  const summary = `replication lag of ${name}, last 30 minutes: now ${seconds(lastP[1])} and ${bytes(lastP[2])} behind`;
  // Two stacked panels on one time axis: seconds (top) and bytes (bottom), each linear from 0.
  patch(el, caption("Replication lag", "(30 min)"),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary },
      lagPanel(pts, 1, M.t, seconds, "seconds behind", t0, t1), lagPanel(pts, 2, M.t + half + 8, bytes, "bytes behind", t0, t1),
      axis(M.l, H - 5, clock(t0)), axis(W - M.r, H - 5, clock(t1), "end")));
}
