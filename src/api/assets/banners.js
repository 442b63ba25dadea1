// The top of the page: the banners (failed over, alarms, drill, not leader,
// store unreachable, or NORMAL), the tab title, and the traffic split bars with
// their legend. The header line is coordination.js's.

import { dashboardLink } from "./coordination.js";
import { $, chip, h, patch } from "./dom.js";
import { alarmTitle, dayClock, regionColour } from "./format.js";

/** "primary 80%, standby 20%" for the regions with a share under `key`. */
const shares = (st, key) => (st.regions || []).filter((r) => r[key] > 0).map((r) => `${r.name} ${r[key]}%`).join(", ");

/** One banner: a word in capitals, then what it means. */
const banner = (cls, role, name, title, ...rest) =>
  h("div", { class: `banner ${cls}`, role, "data-banner": name }, h("strong", null, title), ...rest);

function failedOverBanner(st, current, normal) {
  // The status calls any region below its normal weight "failed over"; name a partial shift as such.
  const kind = st.plan ? st.plan.kind : "";
  const synthetic = st.drill && st.drill.synthetic;
  const plain = kind === "degrade_shift" ? "TRAFFIC SHIFTED" : kind === "maintenance" ? "REGION DRAINED" : kind === "drill" ? "DRILL SHIFT" : "FAILED OVER";
  const title = synthetic ? `${plain} (SYNTHETIC DRILL)` : plain;
  return banner("b-failover", "alert", "failed-over", title,
    h("span", null, `Traffic is away from its normal split: now ${current || "nowhere"} (normal: ${normal}).`,
      st.plan ? ` Plan: ${st.plan.kind ?? ""} — ${st.plan.reason ?? ""}.` : ""));
}

const alarmBanner = (a) => banner("b-alarm", "alert", "alarm", "ALARM",
  h("span", null, h("span", { class: "tag", "data-kind": a.kind ?? "", title: a.kind ?? "" }, alarmTitle(a.kind)), a.region ? [" ", h("b", null, a.region), ":"] : "", ` ${a.message ?? ""} `,
    h("span", { class: "muted-on" }, `since ${dayClock(a.since)}`)));

function drillBanner(d) {
  const what = [d.synthetic ? "SYNTHETIC FAILURE (the automation moves real traffic)" : d.dry_run ? "dry run" : "LIVE", d.evacuate ? (d.synthetic ? `of ${d.evacuate}` : `evacuating ${d.evacuate}`) : "", d.state || d.phase || "",
    d.step != null ? `step ${d.step}${Array.isArray(d.steps) ? ` of ${d.steps.length}` : ""}` : ""].filter(Boolean).join(" · ");
  return banner("b-drill", "alert", "drill", d.synthetic ? "SYNTHETIC DRILL" : "DRILL",
    h("span", null, what, d.id ? [" ", h("span", { class: "muted-on" }, `(${d.id})`)] : ""),
    d.id ? h("button", { type: "button", class: "btn small on-dark", "data-abort-drill": d.id, "data-mutating": "" }, "Abort drill…") : "");
}

/** On a follower: who leads instead, and where to act. */
function followerBanner(st) {
  const lead = st.leadership;
  const link = lead.holder ? dashboardLink(lead.leader_api, lead.holder) : "";
  return banner("b-follower", "status", "not-leader", "NOT THE LEADER",
    h("span", null, `This orchestrator (${st.vantage ?? ""}) only observes: `,
      lead.holder ? [h("b", null, lead.holder), ` leads in epoch ${lead.epoch ?? "–"} and applies plans. Operator actions are disabled here`]
        : "no orchestrator leads right now, so none applies plans. Operator actions are disabled",
      link ? ["; ", link, "."] : "."));
}

/** The banners, re-rendered only when they change, and the tab title (the worst state first). */
export function renderBanners(st) {
  const out = [];
  const current = shares(st, "weight");
  const normal = shares(st, "normal_weight");
  if (st.failed_over) out.push(failedOverBanner(st, current, normal));
  for (const a of st.alarms || []) out.push(alarmBanner(a));
  if (st.drill) out.push(drillBanner(st.drill));
  if (st.leadership && st.leadership.leader === false) out.push(followerBanner(st));
  if (st.store && st.store.reachable === false) {
    out.push(banner("b-warn", "status", "store", "STORE UNREACHABLE",
      h("span", null, `${st.store.pending ?? ""} writes buffered; history below may be incomplete. ${st.store.last_error || ""}`)));
  }
  if (out.length === 0) {
    out.push(h("div", { class: "banner b-ok", "data-banner": "ok" }, h("strong", null, "NORMAL"), h("span", null, `All regions at their normal weights: ${normal}.`)));
  }
  patch($("banners"), out);
  const worst = st.failed_over ? (st.plan && st.plan.kind === "degrade_shift" ? "TRAFFIC SHIFTED" : "FAILED OVER") : (st.alarms || []).length ? "ALARM" : st.drill ? "DRILL" : "";
  document.title = `${worst ? `⚠ ${worst} · ` : ""}failover-orchestrator`;
}

/** One bar: a segment per region with a share; labels inside when wide enough. */
function splitBar(st, key) {
  const segs = (st.regions || []).filter((r) => r[key] > 0).map((r) =>
    h("div", {
      class: `seg${r[key] < 35 ? " narrow" : ""}`, "data-region": r.name, "data-weight": r[key],
      style: { width: `${Number(r[key])}%`, background: regionColour(st, r.name) }, title: `${r.name} ${r[key]}%`,
    },
    // Narrow segments drop the name first (phones), then the label entirely; the legend below has both.
    r[key] >= 8 ? [h("span", { class: "seg-name" }, `${r.name}\u00a0`), `${r[key]}%`] : ""));
  return segs.length ? segs : h("div", { class: "seg empty" }, "no traffic");
}

/** The current and normal split bars, their spoken labels, and the legend. */
export function renderSplit(st) {
  patch($("split"), splitBar(st, "weight"));
  patch($("split-normal"), splitBar(st, "normal_weight"));
  const all = (key) => (st.regions || []).map((r) => `${r.name} ${r[key]}%`).join(", ");
  $("split").setAttribute("aria-label", `current traffic split: ${all("weight")}`);
  $("split-normal").setAttribute("aria-label", `normal traffic split: ${all("normal_weight")}`);
  patch($("split-legend"), (st.regions || []).map((r) => {
    const moved = r.weight !== r.normal_weight;
    return h("li", { class: moved ? "moved" : "" },
      h("span", { class: "swatch", style: { background: regionColour(st, r.name) }, "aria-hidden": "true" }),
      " ", h("b", null, r.name), ` ${r.weight}%`, moved ? [" ", h("span", { class: "muted" }, `(normal ${r.normal_weight}%)`)] : "", " ", chip(r.health));
  }));
}
