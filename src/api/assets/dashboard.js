// Dashboard script: renders the status snapshot pushed over Server-Sent Events.
"use strict";
const colours = ["#1565c0", "#6a1b9a", "#00695c", "#ef6c00", "#37474f"];
const el = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function render(st) {
  const split = el("split");
  split.innerHTML = st.regions.map((r, i) => r.weight > 0
    ? `<div style="width:${r.weight}%;background:${colours[i % colours.length]}" title="${esc(r.name)} ${r.weight}%">${esc(r.name)} ${r.weight}%</div>` : "").join("");
  el("regions").innerHTML = st.regions.map((r) => `
    <article class="card ${r.health}" aria-label="region ${esc(r.name)}" data-region="${esc(r.name)}">
      <h3>${esc(r.name)} <small>(${esc(r.role)})</small> <span class="badge">${esc(r.health)}</span></h3>
      <p>weight <strong>${r.weight}</strong> of normal ${r.normal_weight}${r.maintenance ? " · maintenance: " + esc(r.maintenance) : ""}</p>
      <p>${r.layers.map((l) => `${l.layer}: <span class="badge ${l.health ?? "unknown"}">${l.health ?? "n/a"}</span>`).join(" ")}</p>
      <table><tr><th>check</th><th>state</th><th>latency</th><th>last error</th></tr>
      ${r.checks.map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.health)}</td><td>${c.last_latency_ms != null ? c.last_latency_ms.toFixed(1) + " ms" : "–"}</td><td>${esc(c.last_error ?? "")}</td></tr>`).join("")}
      </table>
    </article>`).join("");
  el("reasons").innerHTML = (st.acting.reasons || []).map((r) => `<li>${esc(r)}</li>`).join("");
  const banner = el("banner");
  const msgs = [];
  if (!st.leadership.leader) msgs.push("This orchestrator is not the leader.");
  if (st.failed_over) msgs.push("Failed over: traffic is away from its normal split.");
  for (const a of st.alarms) msgs.push(`Alarm (${a.kind}): ${a.message}`);
  banner.hidden = msgs.length === 0;
  banner.innerHTML = msgs.map(esc).join("<br>");
}

async function loadEvents() {
  try {
    const r = await fetch("/api/v1/events?limit=30");
    if (!r.ok) return;
    const body = await r.json();
    el("events").innerHTML = body.events.map((e) => `<li><time>${esc(new Date(e.at).toLocaleTimeString())}</time> [${esc(e.kind)}] ${esc(e.message)}</li>`).join("");
  } catch (_) { /* shown as reconnecting by the stream */ }
}

function connect() {
  const live = el("live");
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("status", (ev) => { live.textContent = "live"; live.className = "live on"; render(JSON.parse(ev.data)); });
  es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
}
connect();
loadEvents();
setInterval(loadEvents, 3000);
