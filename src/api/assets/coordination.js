// Coordination on the page: who leads and in which epoch, the coordination
// backend's health and the quorum (the header), what each vantage sees of a
// region (the chips on every card), and the lock on operator actions of a follower
// (only the leader acts; the others would answer 409) or of a viewer's session.
//
// Shapes (src/status.rs, src/coord/mod.rs): `leadership {leader, epoch, holder,
// leader_api, backend}`, `coordination {backend: {backend, connected, since,
// last_error, endpoints, requests} | null, quorum, vantages}`, and per region
// `views [{vantage, health, since, fresh, age_ms, reasons}]` and `quorum_note`.
// With `single` coordination there is one vantage, always the leader: the
// header says "single orchestrator" and each card shows that vantage's chip.

import { token } from "./api.js";
import { $, chip, h, patch, rel } from "./dom.js";
import { HEALTH_ICON, dayClock, duration, hcls, httpUrl, redactUrls, shortTarget } from "./format.js";
import { state } from "./state.js";

const isSingle = (st) => ((st.leadership || {}).backend || ((st.coordination || {}).backend || {}).backend) === "single";

/** A link to another orchestrator's dashboard at `api` (its API URL), or "" when that is no http(s) URL. */
export function dashboardLink(api, name) {
  const url = httpUrl(api);
  if (!url) return "";
  return h("a", { href: url, "data-leader-link": "" }, `open ${name ? `${name}'s` : "the leader's"} dashboard`);
}

/** Why operator actions are disabled on this orchestrator, or null when it leads. */
export function followerReason(st) {
  const lead = st.leadership || {};
  if (lead.leader !== false) return null;
  return lead.holder
    ? `Only the leader acts: ${lead.holder} leads (epoch ${lead.epoch ?? "–"}). Use ${lead.holder}'s dashboard.`
    : "No orchestrator leads right now: actions would be refused.";
}

/** Why a signed-in caller may not act: a viewer's token; null when its role may (or no one signed in). */
function roleReason() {
  const p = state.principal;
  if (!p || !p.authenticated || !token.get() || p.role === "operator" || p.role === "admin") return null;
  return `Signed in as ${p.name} (${p.role}): actions need an operator or admin token. Sign out and sign in with one.`;
}

/** Disables every operator action (`data-mutating`) on a follower or for a viewer, with a title saying why. */
export function lockActions(st) {
  const why = followerReason(st) || roleReason();
  for (const b of document.querySelectorAll("[data-mutating]")) {
    b.disabled = Boolean(why);
    if (why) b.title = why;
    else b.removeAttribute("title");
  }
}

/** "leader (primary)", "following dr · open dr's dashboard", or "no leader known". */
function leaderItem(st, lead) {
  const attrs = (cls) => ({ class: `coord-item ${cls}`, "data-field": "coord-leader" });
  if (lead.leader) {
    return h("span", attrs("lead-self"), h("b", null, "leader"), isSingle(st) ? "" : ` (${lead.holder ?? st.vantage ?? ""}, this orchestrator)`);
  }
  if (lead.holder) {
    const link = dashboardLink(lead.leader_api, lead.holder);
    return h("span", attrs("lead-other"), "following ", h("b", null, lead.holder), link ? [" · ", link] : "");
  }
  return h("span", attrs("lead-none"), chip("down", "no leader known"));
}

/** The backend's health: "etcd ✓ connected for 3 min · 127.0.0.1:2379, … · last error: …". */
function backendItem(st, be) {
  const attrs = { class: "coord-item", "data-field": "coord-backend" };
  if (isSingle(st)) return h("span", Object.assign(attrs, { "data-backend": "single" }), h("span", { class: "muted" }, "single orchestrator"));
  if (!be) return h("span", attrs, chip("unknown", "coordination: no report yet"));
  const endpoints = (be.endpoints || []).map(shortTarget);
  const err = be.last_error ? redactUrls(be.last_error) : "";
  return h("span", Object.assign(attrs, { "data-backend": be.backend ?? "", "data-connected": String(Boolean(be.connected)) }),
    chip(be.connected ? "up" : "down", `${be.backend ?? ""} ${be.connected ? "connected" : "lost"}`), " ",
    h("span", { class: "muted" }, rel(be.since, "for ")),
    endpoints.length ? [" · ", h("span", { class: "mono endpoints", title: "etcd endpoints" }, endpoints.join(", "))] : "",
    err ? [" · ", h("span", { class: be.connected ? "muted" : "coord-error", "data-field": "coord-error" }, `last error: ${err}`)] : "");
}

/** The header: this orchestrator's vantage, and who leads, the epoch, the backend and the quorum. */
export function renderHeader(st) {
  const lead = st.leadership || {};
  const coord = st.coordination || {};
  $("who").textContent = `vantage ${st.vantage ?? ""}`;
  const vantages = (coord.vantages || []).length;
  patch($("coord"),
    leaderItem(st, lead),
    h("span", { class: "coord-item", "data-field": "coord-epoch" }, "epoch ", h("b", null, String(lead.epoch ?? "–"))),
    backendItem(st, coord.backend),
    isSingle(st) ? "" : h("span", { class: "coord-item", "data-field": "coord-quorum" }, `quorum ${coord.quorum ?? "–"} of ${vantages} vantages`));
}

/** "<1 s", "3 s", "2 min 5 s": how old a peer's view is. */
const age = (msOld) => (msOld == null ? "" : msOld < 1000 ? "<1 s" : duration(msOld));

/**
 * One vantage's view of region `r`, a box of the row: the vantage and the view's age, then its
 * health (icon and word) and whether it is stale; the reasons are in the title (the tooltip,
 * and the accessible description).
 */
function vantageChip(st, r, v) {
  const health = hcls(v.health);
  const here = v.vantage === st.vantage;
  const old = here ? "" : age(v.age_ms);
  const title = [
    `${v.vantage} sees ${r.name} ${v.health ?? "unknown"}${v.since ? ` since ${dayClock(v.since)}` : ""}`,
    here ? "this orchestrator's own view" : `view received ${old} ago: ${v.fresh ? "fresh, it votes" : "stale, too old to vote"}`,
    ...(v.reasons || []).map((x) => String(x ?? "")),
  ].join("\n");
  return h("li", {
    class: `vchip${v.fresh ? "" : " stale"}`, title,
    "data-vantage": v.vantage ?? "", "data-health": health, "data-fresh": String(Boolean(v.fresh)),
  },
  h("span", { class: "vchip-name" }, h("b", null, v.vantage ?? ""), h("span", { class: "muted" }, here ? " (here)" : old ? ` · ${old}` : "")),
  h("span", { class: `state state-${health}` }, `${HEALTH_ICON[health]} ${health}`, v.fresh ? "" : " (stale)"));
}

/** The card's "seen from" row: a box per vantage side by side, then the quorum sentence when there is one. */
export function vantageViews(st, r) {
  const views = r.views || [];
  return [
    h("div", { class: "views-row" },
      h("span", { class: "views-label" }, "seen from"),
      views.length
        ? h("ul", { class: "vchips", "aria-label": `what each vantage sees of ${r.name}` }, views.map((v) => vantageChip(st, r, v)))
        : h("span", { class: "muted small" }, "no vantage has reported yet")),
    r.quorum_note ? h("p", { class: "quorum-note", "data-field": "quorum-note" }, r.quorum_note) : "",
  ];
}
