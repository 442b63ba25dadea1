// Region cards: one per region, in the status's order. A card is built once (its
// buttons keep focus across snapshots); then only its non-interactive parts are
// rewritten, and only when they changed (`patch`).

import { openDrill, openMaintenance } from "./actions.js";
import { latencyChart, updateLagChart } from "./charts.js";
import { vantageViews } from "./coordination.js";
import { $, chip, h, patch, rel } from "./dom.js";
import { fillRegionFilter } from "./events.js";
import { bytes, dayClock, hcls, lagHealth, ms, regionColour, seconds, shortTarget } from "./format.js";

const cards = new Map(); // region name -> { root, parts }
let regionsKey = "";

/** Builds the card skeleton once; its parts are then updated in place. */
function buildCard(r) {
  const hid = `card-h-${Math.random().toString(36).slice(2, 8)}`;
  const part = (name, cls, hidden) => h(name === "latency" || name === "lag-chart" ? "figure" : "div",
    { class: cls, "data-part": name, hidden });
  const parts = {
    health: h("span", { class: "big-state", "data-field": "health" }),
    summary: part("summary", "card-summary"), views: part("views", "views"), layers: part("layers"), checks: part("checks", "checks-wrap"),
    lag: part("lag", "lag", true), latency: part("latency", "chart"), lagChart: part("lag-chart", "chart lag-chart", true),
    maint: h("button", { type: "button", class: "btn", "data-action": "maintenance", "data-mutating": "", onclick: () => openMaintenance(r.name) }),
    drill: h("button", { type: "button", class: "btn", "data-action": "drill", "data-mutating": "", onclick: () => openDrill(r.name) }, "Drill: evacuate…"),
  };
  const root = h("article", { class: "card", "data-region": r.name, "aria-labelledby": hid },
    h("header", { class: "card-h" }, h("h3", { id: hid }, r.name), h("span", { class: "role" }, r.role ?? ""), parts.health),
    parts.summary, parts.views, parts.layers, parts.checks, parts.lag, parts.latency, parts.lagChart,
    h("div", { class: "actions card-actions" }, parts.maint, parts.drill));
  return { root, parts };
}

/** The cards: rebuilt when the set of regions changes, updated in place otherwise. */
export function renderRegions(st) {
  const regions = st.regions || [];
  const key = regions.map((r) => r.name).join("\u0000");
  if (key !== regionsKey) {
    // The set of regions changed (first snapshot or a new configuration): rebuild.
    regionsKey = key;
    cards.clear();
    const box = $("regions");
    box.replaceChildren();
    for (const r of regions) {
      const c = buildCard(r);
      cards.set(r.name, c);
      box.appendChild(c.root);
    }
    fillRegionFilter(regions);
  }
  for (const r of regions) updateCard(st, r, cards.get(r.name));
}

/** Health since when, and the weight against the normal weight (with a meter). */
function summary(st, r, health) {
  const pct = Math.max(0, Math.min(100, Number(r.weight)));
  const normalPct = Math.max(0, Math.min(100, Number(r.normal_weight)));
  const delta = r.weight - r.normal_weight;
  return [
    h("p", { class: "since" }, `${health} `, rel(r.since, "for "), r.since ? [" ", h("span", { class: "muted" }, `(since ${dayClock(r.since)})`)] : ""),
    h("div", { class: "weight" },
      h("div", { class: "weight-text" },
        h("span", null, "weight ", h("b", { "data-field": "weight" }, `${r.weight ?? ""}%`), " of traffic"),
        h("span", { class: delta === 0 ? "muted" : "delta" }, `normal ${r.normal_weight ?? ""}%${delta ? ` (${delta > 0 ? "+" : ""}${delta})` : ""}`)),
      h("div", { class: "meter", "aria-hidden": "true" },
        h("div", { class: "meter-fill", style: { width: `${pct}%`, background: regionColour(st, r.name) } }),
        h("div", { class: "meter-normal", style: { left: `${normalPct}%` } }))),
    r.maintenance ? h("p", { class: "maint" }, `🔧 In maintenance (drained): ${r.maintenance}`) : "",
  ];
}

const layers = (r) => h("ul", { class: "layers", "aria-label": "health per layer" }, (r.layers || []).map((l) =>
  h("li", null, h("span", { class: "layer-name" }, l.layer ?? ""), l.health ? chip(l.health) : h("span", { class: "state state-none" }, "no check"))));

/** Each check with its state, last latency and outcome, and why it fails (or what it probes). */
function checkRow(c) {
  const detail = c.last_error ? c.last_error
    : c.fail_streak > 0 ? `${c.fail_streak} failed in a row (down at ${c.fall ?? ""})`
      : h("span", { class: "muted", title: c.target ?? "" }, `${c.type ?? ""} ${shortTarget(c.target)}`);
  return h("tr", { class: `row-${hcls(c.health)}` },
    h("th", { scope: "row" }, h("span", { class: "layer-tag" }, c.layer ?? ""), ` ${c.name ?? ""}`),
    h("td", null, chip(c.health)),
    h("td", { class: "num" }, ms(c.last_latency_ms), h("br"),
      h("span", { class: `outcome outcome-${c.last_outcome || "none"}` }, c.last_outcome ? c.last_outcome : "no probe yet")),
    h("td", { class: "detail" }, detail));
}

const checks = (r) => h("table", { class: "checks" },
  h("caption", { class: "sr-only" }, `checks of ${r.name}`),
  h("thead", null, h("tr", null, h("th", { scope: "col" }, "check"), h("th", { scope: "col" }, "state"),
    h("th", { scope: "col", class: "num" }, "last"), h("th", { scope: "col" }, "detail"))),
  h("tbody", null, (r.checks || []).map(checkRow)));

/**
 * Replication lag: rendered only when the status carries it. Shape (status.rs /
 * replication::LagSample): { at, bytes, seconds, state, bytes_source,
 * seconds_source, detail }; a single `source` is accepted too.
 */
function lag(l) {
  const s = String(l.state ?? "unknown").replace(/_/g, " ");
  const src = l.source ?? ([...new Set([l.bytes_source, l.seconds_source].filter(Boolean))].join(" / ") || "–");
  const value = (dt, dd) => h("div", null, h("dt", null, dt), dd);
  return [
    h("h4", null, "Replication lag"),
    h("dl", { class: "lag-values" },
      value("behind", h("dd", { "data-field": "lag-bytes" }, bytes(l.bytes))),
      value("delay", h("dd", { "data-field": "lag-seconds" }, seconds(l.seconds))),
      value("state", h("dd", null, chip(lagHealth(s), s))),
      value("source", h("dd", null, String(src)))),
    l.detail || l.at ? h("p", { class: "small muted" }, l.detail || "", l.at ? [" measured ", rel(l.at, "", " ago")] : "") : "",
  ];
}

function updateCard(st, r, card) {
  const { root, parts } = card;
  const health = hcls(r.health);
  root.dataset.health = health;
  root.className = `card health-${health}${r.maintenance ? " in-maintenance" : ""}`;
  patch(parts.health, chip(health, health.toUpperCase()));
  patch(parts.summary, summary(st, r, health));
  patch(parts.views, vantageViews(st, r));
  patch(parts.layers, layers(r));
  patch(parts.checks, checks(r));
  if (r.lag && typeof r.lag === "object") {
    parts.lag.hidden = false;
    patch(parts.lag, lag(r.lag));
  } else {
    parts.lag.hidden = true;
  }
  patch(parts.latency, latencyChart(r));
  updateLagChart(r, parts.lagChart);

  parts.maint.textContent = r.maintenance ? "End maintenance…" : "Drain for maintenance…";
  parts.maint.setAttribute("aria-label", `${r.maintenance ? "end maintenance of" : "drain for maintenance"} ${r.name}`);
  parts.drill.setAttribute("aria-label", `start a drill evacuating ${r.name}`);
  parts.drill.hidden = !(r.normal_weight > 0);
}
