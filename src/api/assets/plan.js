// The decision panels: whether the orchestrator is acting and why, the current
// plan with each provider's result, and the running drill.

import { $, chip, h, patch, rel } from "./dom.js";
import { clock, dayClock, regionColour, shortHumantime } from "./format.js";

/** One row of a definition list: `<div><dt>…</dt><dd>…</dd></div>`. */
const kv = (term, ...value) => h("div", null, h("dt", null, term), h("dd", null, ...value));

/** "acting" or "not acting", and the reasons decide gave. */
function renderActing(st) {
  const a = st.acting || {};
  const reasons = (a.reasons || []).map((x) => h("li", null, String(x ?? "")));
  patch($("acting"),
    h("p", null, a.active ? chip("up", "acting") : chip("degraded", "not acting"), " ",
      h("span", { class: "muted" }, `${a.active ? "leader: may apply plans" : "observing only"}${a.decided_at ? ` · last decision ${clock(a.decided_at)}` : ""}`)),
    h("ul", { class: "reasons" }, reasons.length ? reasons : h("li", { class: "muted" }, "no reasons given")));
}

/**
 * A provider result (applier.rs `ApplyResult`, tagged by `state`): verified, failed, and the
 * rest as unknown; `refused` (a stale epoch, or the fence found this orchestrator no longer
 * leads: final, never retried) has a chip of its own.
 */
function resultChip(res) {
  if (res.state === "refused") {
    return h("span", { class: "state state-refused", title: "refused for good: the write came from a stale epoch or a former leader; never retried" }, "⊘ refused");
  }
  return chip(res.state === "verified" ? "up" : res.state === "failed" ? "down" : "unknown", res.state);
}

/** One provider's apply: result, attempts, time taken, and its error. */
function providerRow(x) {
  const res = x.result || {};
  const err = res.error ? `${res.error}${res.will_retry ? " (will retry)" : ""}` : "";
  return h("tr", { "data-provider": x.provider ?? "", "data-result": res.state ?? "" }, h("th", { scope: "row" }, x.provider ?? ""), h("td", null, resultChip(res)),
    h("td", { class: "num" }, x.attempts ?? ""), h("td", { class: "num" }, shortHumantime(x.elapsed)),
    h("td", { class: "opt" }, clock(x.at)), h("td", { class: "detail" }, err));
}

function providersTable(rows) {
  const col = (text, cls) => h("th", { scope: "col", class: cls }, text);
  return h("div", { class: "table-wrap" }, h("table", { class: "providers" }, h("caption", null, "Providers"),
    h("thead", null, h("tr", null, col("provider"), col("result"), col("attempts", "num"), col("took", "num"), col("at", "opt"), col("error"))),
    h("tbody", null, rows)));
}

/** The plan: kind, reason, weights, when decided and verified, and each provider's result. */
function renderPlan(st) {
  const p = st.plan;
  if (!p) { patch($("plan"), h("p", { class: "muted" }, "No plan yet.")); return; }
  const providers = (p.providers || []).map(providerRow);
  const weights = Object.entries(p.weights || {}).map(([r, w]) =>
    h("li", null, h("span", { class: "swatch", style: { background: regionColour(st, r) }, "aria-hidden": "true" }), `${r} `, h("b", null, `${w ?? ""}%`)));
  patch($("plan"),
    h("dl", { class: "kv" },
      kv("kind", h("span", { class: `tag plan-${p.kind ?? ""}` }, p.kind ?? "")),
      kv("reason", p.reason ?? ""),
      kv("weights", h("ul", { class: "inline" }, weights)),
      kv("decided", `${dayClock(p.decided_at)} `, rel(p.decided_at, "(", " ago)")),
      kv("verified", p.verified_at ? [chip("up", "verified"), ` ${dayClock(p.verified_at)}`] : chip("degraded", "not yet verified")),
      kv("recorded", p.recorded ? chip("up", "recorded in the store") : chip("degraded", "not yet recorded")),
      kv("epoch · id", h("span", { class: "mono" }, `${p.epoch ?? ""} · ${p.id ?? ""}`))),
    providers.length ? providersTable(providers) : h("p", { class: "muted" }, "No provider has reported yet."));
}

/** Why the orchestrator is (or is not) acting, and the current plan. */
export function renderDecision(st) {
  renderActing(st);
  renderPlan(st);
}

/** The running drill's scalar fields, and its abort button (handled by one delegated listener). */
export function renderDrill(st) {
  const d = st.drill;
  if (!d) { patch($("drill"), h("p", { class: "muted" }, "No drill running.")); return; }
  const rows = Object.entries(d).filter(([, v]) => v == null || typeof v !== "object" || Array.isArray(v))
    .map(([k, v]) => kv(k, String(Array.isArray(v) ? v.join(", ") : v ?? "–")));
  patch($("drill"), h("p", null, chip("degraded", d.synthetic ? "SYNTHETIC-FAILURE drill running" : d.dry_run ? "dry-run drill running" : "LIVE drill running")), h("dl", { class: "kv" }, rows),
    d.id ? h("div", { class: "actions" }, h("button", { type: "button", class: "btn danger", "data-abort-drill": d.id, "data-mutating": "" }, "Abort drill…")) : "");
}
