// Operator actions: drain or undrain a region for maintenance, start a drill,
// abort a drill. Each opens the confirmation dialog with its form and a preview
// of the plan it expects (the orchestrator decides and records the actual plan).

import { $, h } from "./dom.js";
import { openDialog } from "./dialogs.js";
import { state } from "./state.js";

const ROLE_ORDER = { primary: 0, standby: 1, dr: 2 };
const STEPS_ERROR = "Steps must be increasing whole percentages between 1 and 100.";

/** Candidates to take a drained or evacuated region's share: not down, not drained; same-city before DR. */
function successor(st, name) {
  const others = (st.regions || []).filter((r) => r.name !== name && r.health !== "down" && !r.maintenance);
  others.sort((a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9));
  return others[0];
}

/** A table of weights: one column per region, one row per `[label, weights]`. */
function weightsTable(rows) {
  const names = (state.status.regions || []).map((r) => r.name);
  return h("table", { class: "preview" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }), names.map((n) => h("th", { scope: "col", class: "num" }, n)))),
    h("tbody", null, rows.map(([label, w]) =>
      h("tr", null, h("th", { scope: "row" }, label), names.map((n) => h("td", { class: "num" }, `${w[n] ?? 0}%`))))));
}
const currentWeights = () => Object.fromEntries((state.status.regions || []).map((r) => [r.name, r.weight]));

/** "Plan it will apply (note)". */
const planHeading = (note) => h("h3", null, "Plan it will apply", note ? [" ", h("span", { class: "muted small" }, note)] : "");
/** Where the dialog puts the preview. */
const previewBox = () => h("div", { "data-preview": "" });

/** Drain a region for maintenance, or end its maintenance. */
export function openMaintenance(name) {
  const st = state.status;
  const r = st && (st.regions || []).find((x) => x.name === name);
  if (!r) return;
  const drain = !r.maintenance;
  openDialog({
    title: drain ? `Drain ${name} for maintenance` : `End maintenance of ${name}`,
    confirm: drain ? `Drain ${name}` : `Undrain ${name}`,
    form: [
      h("p", null, drain
        ? ["Moves all traffic away from ", h("b", null, name), " and keeps it away until maintenance ends."]
        : ["Lets ", h("b", null, name), ` take traffic again (back toward its normal weight of ${r.normal_weight ?? ""}%).`]),
      previewBox(),
    ],
    preview: () => {
      const now = currentWeights();
      const next = Object.assign({}, now);
      let note = "";
      if (drain) {
        const to = successor(state.status, name);
        if (to) { next[to.name] = (next[to.name] || 0) + (next[name] || 0); next[name] = 0; note = `${name}'s share goes to ${to.name}.`; } else { note = "No healthy region can take its share: the orchestrator will refuse."; }
      } else {
        for (const x of state.status.regions || []) next[x.name] = x.maintenance && x.name !== name ? 0 : x.normal_weight;
      }
      return [planHeading("(expected; the orchestrator decides and records the actual plan)"),
        weightsTable([["now", now], ["after", next]]), h("p", { class: "small" }, note)];
    },
    request: () => ({ url: `/api/v1/regions/${encodeURIComponent(name)}/maintenance`, body: { drain } }),
  });
}

/** "50, 100" → [50, 100]; null unless strictly increasing whole percentages in 1..=100. */
export function parseSteps(text) {
  const steps = String(text).split(/[\s,]+/).filter(Boolean).map(Number);
  if (steps.length === 0 || steps.some((s) => !Number.isInteger(s) || s < 1 || s > 100)) return null;
  for (let i = 1; i < steps.length; i += 1) if (steps[i] <= steps[i - 1]) return null;
  return steps;
}

/** The drill form: region to evacuate, steps, hold, dry run or live. */
function drillForm(st, pick) {
  const field = (label, control) => h("label", { class: "field" }, label, control);
  const mode = (value, checked, text) => h("label", null, h("input", { type: "radio", name: "dr-mode", value, checked }), text);
  return [
    h("div", { class: "grid2" },
      field("Evacuate region ", h("select", { id: "dr-region" }, (st.regions || []).map((r) =>
        h("option", { value: r.name, selected: r.name === pick }, `${r.name} (${r.role ?? ""}, ${r.weight ?? ""}%)`)))),
      field("Steps (% of its share moved) ", h("input", { id: "dr-steps", value: "50, 100", inputmode: "numeric", "aria-describedby": "dr-steps-hint" })),
      field("Hold each step (seconds) ", h("input", { id: "dr-hold", type: "number", min: "0", max: "3600", value: "30" })),
      h("fieldset", { class: "field" }, h("legend", null, "Mode"),
        mode("dry", true, " dry run (decide and record; providers untouched)"),
        mode("live", false, " live (moves real traffic)"),
        mode("synthetic", false, " synthetic failure (rehearse the automation: the region's probes are reported failed, the automatic failover moves real traffic, then it rolls back; steps are ignored)"))),
    h("p", { id: "dr-steps-hint", class: "hint" }, "Increasing percentages, e.g. ", h("code", null, "50, 100"),
      ". After the last hold the drill rolls back automatically."),
    previewBox(),
  ];
}

const drillMode = () => document.querySelector('input[name="dr-mode"]:checked').value;
const liveMode = () => drillMode() === "live";

/** The drill's expected weights: now, after each step, and after the rollback. */
function drillPreview() {
  const region = $("dr-region").value;
  const steps = parseSteps($("dr-steps").value);
  const live = liveMode();
  const now = currentWeights();
  const to = successor(state.status, region);
  if (drillMode() === "synthetic") {
    $("dlg-confirm").textContent = "Start SYNTHETIC-FAILURE drill";
    if (!to) return h("p", { class: "dlg-error" }, `No healthy region can take ${region}'s share.`);
    const w = Object.assign({}, now);
    w[to.name] = (w[to.name] || 0) + (w[region] || 0);
    w[region] = 0;
    return [planHeading("(expected, if the automation fails over as configured)"), weightsTable([["now", now], ["automatic failover", w], ["rollback", now]]),
      h("p", { class: "small" }, h("b", null, "SYNTHETIC FAILURE:"), ` ${region}'s probes are reported failed on every vantage; real traffic moves to the failover order's choice (${to.name} now), holds ${$("dr-hold").value} s, and comes back once ${region}'s real probes pass. Refused while any region is unhealthy.`)];
  }
  $("dlg-confirm").textContent = live ? "Start LIVE drill" : "Start dry-run drill";
  if (!steps) return h("p", { class: "dlg-error" }, STEPS_ERROR);
  if (!to) return h("p", { class: "dlg-error" }, `No healthy region can take ${region}'s share.`);
  const rows = [["now", now]];
  for (const s of steps) {
    const w = Object.assign({}, now);
    const moved = Math.round(((now[region] || 0) * s) / 100);
    w[region] -= moved;
    w[to.name] = (w[to.name] || 0) + moved;
    rows.push([`step ${s}%`, w]);
  }
  rows.push(["rollback", now]);
  return [planHeading("(expected)"), weightsTable(rows),
    h("p", { class: "small" }, live ? [h("b", null, "LIVE:"), " real traffic moves to "] : "Dry run: nothing is sent to the providers; target ",
      `${to.name}; each step holds ${$("dr-hold").value} s.`)];
}

/** Start a drill evacuating `name` (or the first region with a normal share). */
export function openDrill(name) {
  const st = state.status;
  if (!st) return;
  const candidates = (st.regions || []).filter((r) => r.normal_weight > 0);
  const pick = name || (candidates[0] && candidates[0].name) || "";
  openDialog({
    title: "Start a failover drill",
    confirm: "Start drill",
    form: drillForm(st, pick),
    preview: drillPreview,
    request: () => {
      const steps = parseSteps($("dr-steps").value);
      const hold = Number($("dr-hold").value);
      if (!Number.isInteger(hold) || hold < 0) return { error: "Hold must be a whole number of seconds." };
      if (drillMode() === "synthetic") {
        return { url: "/api/v1/drills", body: { evacuate: $("dr-region").value, synthetic_failure: true, hold_seconds: hold } };
      }
      if (!steps) return { error: STEPS_ERROR };
      return { url: "/api/v1/drills", body: { evacuate: $("dr-region").value, steps, hold_seconds: hold, dry_run: !liveMode() } };
    },
  });
}

/** Abort drill `id`: traffic returns to the weights from before it. */
export function openAbort(id) {
  openDialog({
    title: "Abort the drill",
    confirm: "Abort drill",
    form: [h("p", null, "Stops drill ", h("span", { class: "mono" }, id), " and rolls traffic back to the plan it started from."), previewBox()],
    preview: () => {
      const st = state.status;
      const before = st.drill && st.drill.before_weights;
      return before ? [planHeading(), weightsTable([["now", currentWeights()], ["after", before]])]
        : h("p", { class: "small" }, "Traffic returns to the weights from before the drill.");
    },
    request: () => ({ url: `/api/v1/drills/${encodeURIComponent(id)}/abort`, body: {} }),
  });
}

/** Wires "Start a drill…" and the abort buttons (they live in re-rendered parts: one delegated listener). */
export function initActions() {
  $("drill-start").addEventListener("click", () => openDrill(""));
  document.addEventListener("click", (e) => {
    const b = e.target.closest && e.target.closest("[data-abort-drill]");
    if (b) openAbort(b.dataset.abortDrill);
  });
}
