// Dashboard script: renders the status snapshot pushed over Server-Sent Events
// (`/api/v1/stream`), reads history from the REST API, and sends operator actions.
//
// Hand-written, no library. Rules kept throughout:
// - every piece of text that comes from the server goes through `esc()` before it
//   reaches innerHTML (region names, check names, error texts, event messages);
// - the stream can push ~4 snapshots a second, so rendering never replaces
//   interactive elements (buttons, selects, the dialog): region cards are built once
//   and only their non-interactive parts are rewritten, and only when they changed;
// - nothing polls: events are re-read when the status changes in a way that matters
//   (debounced), lag history at most every LAG_REFRESH_MS and only while shown.
"use strict";

(() => {
  const TOKEN_KEY = "failover-orchestrator.operator-token";
  // Page size of the events timeline; `?events_page=N` (1–500) overrides it, e.g. to see "load more" early.
  const EVENTS_PAGE = (() => {
    const n = Number(new URLSearchParams(location.search).get("events_page"));
    return Number.isInteger(n) && n >= 1 && n <= 500 ? n : 25;
  })();
  const EVENTS_DEBOUNCE_MS = 800;
  const EVENTS_MAX_WAIT_MS = 3000;
  const LAG_REFRESH_MS = 15000;
  const LAG_WINDOW_MS = 30 * 60 * 1000;
  const LAG_STEP_S = 15;
  const STALE_AFTER_MS = 30000;

  const HEALTHS = ["up", "degraded", "down", "unknown"];
  const HEALTH_ICON = { up: "✓", degraded: "▲", down: "✕", unknown: "?" };
  const ROLE_ORDER = { primary: 0, standby: 1, dr: 2 };
  // Region colours in the split bar (white text on each passes WCAG AA).
  const REGION_COLOURS = ["#1f55b3", "#6a3d9a", "#00695c", "#8c4a00", "#37474f", "#ad1457"];
  // Layer styles in the latency chart: distinct by colour *and* dash pattern.
  const LAYER_STYLE = {
    app: { colour: "var(--line-app)", dash: "", width: 2 },
    middleware: { colour: "var(--line-mw)", dash: "6 3", width: 1.6 },
    infra: { colour: "var(--line-infra)", dash: "2 3", width: 1.6 },
  };

  const $ = (id) => document.getElementById(id);

  /** Escapes text for HTML content and quoted attribute values. */
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  /** A health value usable as a CSS class (anything unexpected is "unknown"). */
  const hcls = (h) => (HEALTHS.includes(h) ? h : "unknown");
  /** A state chip: icon + word, so the state never depends on colour alone. */
  const chip = (h, text) => `<span class="state state-${hcls(h)}">${HEALTH_ICON[hcls(h)]} ${esc(text ?? h ?? "unknown")}</span>`;

  // ---- formatting -------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  function clock(t) {
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? "–" : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function dayClock(t) {
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return "–";
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return sameDay ? clock(d) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
  }
  function duration(ms) {
    if (!Number.isFinite(ms)) return "–";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function ms(v) {
    if (v == null || !Number.isFinite(v)) return "–";
    if (v < 1) return `${v.toFixed(2)} ms`;
    if (v < 100) return `${v.toFixed(1)} ms`;
    if (v < 10000) return `${Math.round(v)} ms`;
    return `${(v / 1000).toFixed(1)} s`;
  }
  function bytes(v) {
    if (v == null || !Number.isFinite(Number(v))) return "–";
    let n = Number(v);
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }
  function seconds(v) {
    if (v == null || !Number.isFinite(Number(v))) return "–";
    const n = Number(v);
    return n < 60 ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} s` : duration(n * 1000);
  }
  /** "4ms 406us 105ns" (humantime) → "4ms 406us": enough precision to read. */
  const shortHumantime = (s) => String(s ?? "").split(" ").slice(0, 2).join(" ");
  /** "postgres://user@10.0.0.1:5432/db" → "10.0.0.1:5432": the full target is in the title. */
  function shortTarget(t) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(String(t ?? ""));
    return m ? m[1] : String(t ?? "");
  }
  const weightsText = (w) => Object.entries(w || {}).map(([r, v]) => `${r} ${v}`).join(" · ");

  // ---- state ------------------------------------------------------------

  const state = {
    status: null,
    skewMs: 0, // browser clock minus server clock, from generated_at
    receivedAt: 0,
    live: "connecting",
    cards: new Map(), // region name -> { root, parts }
    regionsKey: "",
    sig: "",
    healthByRegion: new Map(),
    events: [],
    eventIds: new Set(),
    nextBefore: null,
    eventsTimer: null,
    eventsFirstAsk: 0,
    eventsLoading: false,
    lag: { api: "unknown", fetchedAt: new Map(), points: new Map() },
  };
  const serverNow = () => Date.now() - state.skewMs;

  /** Assigns innerHTML only when it changed: keeps hover, selection and focus stable. */
  function setHTML(el, html) {
    if (el.__html !== html) {
      el.innerHTML = html;
      el.__html = html;
      fillRelTimes(el);
    }
  }
  /** Relative times ("for 2 min 3 s") live in `data-since` spans; a 1 s ticker refreshes them. */
  function fillRelTimes(root) {
    const now = serverNow();
    for (const el of root.querySelectorAll("[data-since]")) {
      const t = Date.parse(el.dataset.since);
      el.textContent = Number.isNaN(t) ? "" : `${el.dataset.prefix ?? ""}${duration(now - t)}${el.dataset.suffix ?? ""}`;
    }
  }
  const rel = (t, prefix = "", suffix = "") =>
    t ? `<span data-since="${esc(t)}" data-prefix="${esc(prefix)}" data-suffix="${esc(suffix)}"></span>` : "";

  // ---- rendering: header, banners, split --------------------------------

  function renderHeader(st) {
    const lead = st.leadership || {};
    $("who").textContent = `vantage ${st.vantage} · epoch ${lead.epoch ?? "–"} · ${lead.leader ? "leader" : "follower"}`;
  }

  function renderBanners(st) {
    const out = [];
    const current = (st.regions || []).filter((r) => r.weight > 0).map((r) => `${r.name} ${r.weight}%`).join(", ");
    const normal = (st.regions || []).filter((r) => r.normal_weight > 0).map((r) => `${r.name} ${r.normal_weight}%`).join(", ");
    if (st.failed_over) {
      // The status calls any region below its normal weight "failed over"; name a partial shift as such.
      const kind = st.plan ? st.plan.kind : "";
      const title = kind === "degrade_shift" ? "TRAFFIC SHIFTED" : kind === "maintenance" ? "REGION DRAINED" : kind === "drill" ? "DRILL SHIFT" : "FAILED OVER";
      out.push(`<div class="banner b-failover" role="alert" data-banner="failed-over"><strong>${title}</strong>
        <span>Traffic is away from its normal split: now ${esc(current || "nowhere")} (normal: ${esc(normal)}).
        ${st.plan ? `Plan: ${esc(st.plan.kind)} — ${esc(st.plan.reason)}.` : ""}</span></div>`);
    }
    for (const a of st.alarms || []) {
      out.push(`<div class="banner b-alarm" role="alert" data-banner="alarm"><strong>ALARM</strong>
        <span><span class="tag">${esc(a.kind)}</span>${a.region ? ` <b>${esc(a.region)}</b>:` : ""} ${esc(a.message)}
        <span class="muted-on">since ${esc(dayClock(a.since))}</span></span></div>`);
    }
    if (st.drill) {
      const d = st.drill;
      const what = [d.dry_run ? "dry run" : "LIVE", d.evacuate ? `evacuating ${d.evacuate}` : "", d.state || d.phase || "",
        d.step != null ? `step ${d.step}${Array.isArray(d.steps) ? ` of ${d.steps.length}` : ""}` : ""].filter(Boolean).join(" · ");
      out.push(`<div class="banner b-drill" role="alert" data-banner="drill"><strong>DRILL</strong>
        <span>${esc(what)}${d.id ? ` <span class="muted-on">(${esc(d.id)})</span>` : ""}</span>
        ${d.id ? `<button type="button" class="btn small on-dark" data-abort-drill="${esc(d.id)}">Abort drill…</button>` : ""}</div>`);
    }
    if (st.leadership && st.leadership.leader === false) {
      out.push(`<div class="banner b-follower" role="status" data-banner="not-leader"><strong>NOT THE LEADER</strong>
        <span>This orchestrator (${esc(st.vantage)}) only observes; another one applies plans. Actions sent here may be refused.</span></div>`);
    }
    if (st.store && st.store.reachable === false) {
      out.push(`<div class="banner b-warn" role="status" data-banner="store"><strong>STORE UNREACHABLE</strong>
        <span>${esc(st.store.pending)} writes buffered; history below may be incomplete. ${esc(st.store.last_error || "")}</span></div>`);
    }
    if (out.length === 0) {
      out.push(`<div class="banner b-ok" data-banner="ok"><strong>NORMAL</strong><span>All regions at their normal weights: ${esc(normal)}.</span></div>`);
    }
    setHTML($("banners"), out.join(""));
    const worst = st.failed_over ? (st.plan && st.plan.kind === "degrade_shift" ? "TRAFFIC SHIFTED" : "FAILED OVER") : (st.alarms || []).length ? "ALARM" : st.drill ? "DRILL" : "";
    document.title = `${worst ? `⚠ ${worst} · ` : ""}failover-orchestrator`;
  }

  function regionColour(st, name) {
    const i = (st.regions || []).findIndex((r) => r.name === name);
    return REGION_COLOURS[(i < 0 ? 0 : i) % REGION_COLOURS.length];
  }

  /** One bar: a segment per region with a share; labels inside when wide enough. */
  function splitBar(st, key) {
    return (st.regions || []).filter((r) => r[key] > 0).map((r) => {
      // Narrow segments drop the name first (phones), then the label entirely; the legend below has both.
      const label = r[key] >= 8 ? `<span class="seg-name">${esc(r.name)}&nbsp;</span>${r[key]}%` : "";
      return `<div class="seg${r[key] < 35 ? " narrow" : ""}" data-region="${esc(r.name)}" data-weight="${r[key]}" style="width:${Number(r[key])}%;background:${regionColour(st, r.name)}" title="${esc(r.name)} ${r[key]}%">${label}</div>`;
    }).join("") || `<div class="seg empty">no traffic</div>`;
  }

  function renderSplit(st) {
    setHTML($("split"), splitBar(st, "weight"));
    setHTML($("split-normal"), splitBar(st, "normal_weight"));
    const now = (st.regions || []).map((r) => `${r.name} ${r.weight}%`).join(", ");
    $("split").setAttribute("aria-label", `current traffic split: ${now}`);
    $("split-normal").setAttribute("aria-label", `normal traffic split: ${(st.regions || []).map((r) => `${r.name} ${r.normal_weight}%`).join(", ")}`);
    setHTML($("split-legend"), (st.regions || []).map((r) => {
      const moved = r.weight !== r.normal_weight;
      return `<li class="${moved ? "moved" : ""}"><span class="swatch" style="background:${regionColour(st, r.name)}" aria-hidden="true"></span>
        <b>${esc(r.name)}</b> ${r.weight}%${moved ? ` <span class="muted">(normal ${r.normal_weight}%)</span>` : ""} ${chip(r.health)}</li>`;
    }).join(""));
  }

  // ---- rendering: region cards ------------------------------------------

  /** Builds the card skeleton once; its parts are then updated in place. */
  function buildCard(r) {
    const root = document.createElement("article");
    root.className = "card";
    root.dataset.region = r.name;
    const hid = `card-h-${Math.random().toString(36).slice(2, 8)}`;
    root.setAttribute("aria-labelledby", hid);
    root.innerHTML = `
      <header class="card-h">
        <h3 id="${hid}">${esc(r.name)}</h3>
        <span class="role">${esc(r.role)}</span>
        <span class="big-state" data-field="health"></span>
      </header>
      <div class="card-summary" data-part="summary"></div>
      <div data-part="layers"></div>
      <div data-part="checks" class="checks-wrap"></div>
      <div data-part="lag" class="lag" hidden></div>
      <figure class="chart" data-part="latency"></figure>
      <figure class="chart lag-chart" data-part="lag-chart" hidden></figure>
      <div class="actions card-actions">
        <button type="button" class="btn" data-action="maintenance"></button>
        <button type="button" class="btn" data-action="drill">Drill: evacuate…</button>
      </div>`;
    const part = (p) => root.querySelector(`[data-part="${p}"]`);
    const parts = {
      health: root.querySelector('[data-field="health"]'),
      summary: part("summary"), layers: part("layers"), checks: part("checks"), lag: part("lag"),
      latency: part("latency"), lagChart: part("lag-chart"),
      maint: root.querySelector('[data-action="maintenance"]'), drill: root.querySelector('[data-action="drill"]'),
    };
    parts.maint.addEventListener("click", () => openMaintenance(r.name));
    parts.drill.addEventListener("click", () => openDrill(r.name));
    return { root, parts };
  }

  function renderRegions(st) {
    const regions = st.regions || [];
    const key = regions.map((r) => r.name).join("\u0000");
    if (key !== state.regionsKey) {
      // The set of regions changed (first snapshot or a new configuration): rebuild.
      state.regionsKey = key;
      state.cards.clear();
      const box = $("regions");
      box.innerHTML = "";
      for (const r of regions) {
        const c = buildCard(r);
        state.cards.set(r.name, c);
        box.appendChild(c.root);
      }
      fillRegionFilter(regions);
    }
    for (const r of regions) updateCard(st, r, state.cards.get(r.name));
  }

  function updateCard(st, r, card) {
    const { root, parts } = card;
    const h = hcls(r.health);
    root.dataset.health = h;
    root.className = `card health-${h}${r.maintenance ? " in-maintenance" : ""}`;
    setHTML(parts.health, `${chip(h, h.toUpperCase())}`);

    const pct = Math.max(0, Math.min(100, Number(r.weight)));
    const normalPct = Math.max(0, Math.min(100, Number(r.normal_weight)));
    const delta = r.weight - r.normal_weight;
    setHTML(parts.summary, `
      <p class="since">${esc(h)} ${rel(r.since, "for ")}${r.since ? ` <span class="muted">(since ${esc(dayClock(r.since))})</span>` : ""}</p>
      <div class="weight">
        <div class="weight-text"><span>weight <b data-field="weight">${esc(r.weight)}%</b> of traffic</span>
          <span class="${delta === 0 ? "muted" : "delta"}">normal ${esc(r.normal_weight)}%${delta ? ` (${delta > 0 ? "+" : ""}${delta})` : ""}</span></div>
        <div class="meter" aria-hidden="true"><div class="meter-fill" style="width:${pct}%;background:${regionColour(st, r.name)}"></div>
          <div class="meter-normal" style="left:${normalPct}%"></div></div>
      </div>
      ${r.maintenance ? `<p class="maint">🔧 In maintenance (drained): ${esc(r.maintenance)}</p>` : ""}`);

    setHTML(parts.layers, `<ul class="layers" aria-label="health per layer">${(r.layers || []).map((l) =>
      `<li><span class="layer-name">${esc(l.layer)}</span>${l.health ? chip(l.health) : `<span class="state state-none">no check</span>`}</li>`).join("")}</ul>`);

    setHTML(parts.checks, `<table class="checks"><caption class="sr-only">checks of ${esc(r.name)}</caption>
      <thead><tr><th scope="col">check</th><th scope="col">state</th><th scope="col" class="num">last</th><th scope="col">detail</th></tr></thead>
      <tbody>${(r.checks || []).map((c) => {
        const last = c.last_outcome ? `${esc(c.last_outcome)}` : "no probe yet";
        const detail = c.last_error ? esc(c.last_error)
          : c.fail_streak > 0 ? `${esc(c.fail_streak)} failed in a row (down at ${esc(c.fall)})` : `<span class="muted" title="${esc(c.target)}">${esc(c.type)} ${esc(shortTarget(c.target))}</span>`;
        return `<tr class="row-${hcls(c.health)}"><th scope="row"><span class="layer-tag">${esc(c.layer)}</span> ${esc(c.name)}</th>
          <td>${chip(c.health)}</td>
          <td class="num">${esc(ms(c.last_latency_ms))}<br><span class="outcome outcome-${esc(c.last_outcome || "none")}">${last}</span></td>
          <td class="detail">${detail}</td></tr>`;
      }).join("")}</tbody></table>`);

    // Replication lag: rendered only when the status carries it (a later issue adds it).
    // Shape (status.rs / replication::LagSample): { at, bytes, seconds, state, bytes_source,
    // seconds_source, detail }; a single `source` is accepted too.
    if (r.lag && typeof r.lag === "object") {
      parts.lag.hidden = false;
      const l = r.lag;
      const s = String(l.state ?? "unknown").replace(/_/g, " ");
      const src = l.source ?? ([...new Set([l.bytes_source, l.seconds_source].filter(Boolean))].join(" / ") || "–");
      setHTML(parts.lag, `<h4>Replication lag</h4>
        <dl class="lag-values">
          <div><dt>behind</dt><dd data-field="lag-bytes">${esc(bytes(l.bytes))}</dd></div>
          <div><dt>delay</dt><dd data-field="lag-seconds">${esc(seconds(l.seconds))}</dd></div>
          <div><dt>state</dt><dd>${chip(lagHealth(s), s)}</dd></div>
          <div><dt>source</dt><dd>${esc(src)}</dd></div>
        </dl>
        ${l.detail || l.at ? `<p class="small muted">${esc(l.detail || "")}${l.at ? ` measured ${rel(l.at, "", " ago")}` : ""}</p>` : ""}`);
    } else {
      parts.lag.hidden = true;
    }

    setHTML(parts.latency, latencyChart(r));
    updateLagChart(r, card);

    parts.maint.textContent = r.maintenance ? "End maintenance…" : "Drain for maintenance…";
    parts.maint.setAttribute("aria-label", `${r.maintenance ? "end maintenance of" : "drain for maintenance"} ${r.name}`);
    parts.drill.setAttribute("aria-label", `start a drill evacuating ${r.name}`);
    parts.drill.hidden = !(r.normal_weight > 0);
  }

  /** Maps a free-form lag state to a health colour; the word itself is always shown. */
  function lagHealth(s) {
    const v = s.toLowerCase();
    if (/(exceed|critical|broken|down|stopped|disconnect|stale|fail)/.test(v)) return "down";
    if (/(warn|lagging|behind|slow|catchup|catching|paused)/.test(v)) return "degraded";
    if (/(ok|stream|sync|within|healthy|up)/.test(v)) return "up";
    return "unknown";
  }

  // ---- charts (inline SVG, drawn by hand) --------------------------------

  const W = 360;
  const H = 140;
  const M = { l: 44, r: 8, t: 18, b: 20 };

  /** Probe latency of every check of a region, log scale, failures as red crosses. */
  function latencyChart(r) {
    const series = (r.checks || []).map((c) => ({
      name: c.name, layer: c.layer,
      pts: (c.recent || []).map(([t, v, o]) => [Date.parse(t), Number(v), o]).filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)),
    }));
    const all = series.flatMap((s) => s.pts);
    if (all.length === 0) return `<figcaption>Probe latency</figcaption><p class="muted small">No probes yet.</p>`;
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
      parts.push(`<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>`,
        `<text class="axis" x="${M.l - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end">${esc(v >= 1000 ? `${v / 1000} s` : `${v} ms`)}</text>`);
    }
    const span = (t1 - t0) / 1000;
    parts.push(`<text class="axis" x="${M.l}" y="${H - 5}">−${esc(Math.round(span))} s</text>`,
      `<text class="axis" x="${W - M.r}" y="${H - 5}" text-anchor="end">${esc(clock(t1))}</text>`);
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
      if (d) parts.push(`<path d="${d}" fill="none" stroke="${st.colour}" stroke-width="${st.width}" stroke-dasharray="${st.dash}"/>`);
    }
    for (const [t, v] of degraded) parts.push(`<circle class="pt-degraded" cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5"/>`);
    for (const [t, v] of failed) {
      const cx = x(t);
      const cy = y(v);
      parts.push(`<path class="pt-failed" d="M${(cx - 3).toFixed(1)},${(cy - 3).toFixed(1)}l6,6m0,-6l-6,6"/>`);
    }
    const legend = series.map((s) => {
      const st = LAYER_STYLE[s.layer] || LAYER_STYLE.infra;
      const last = s.pts[s.pts.length - 1];
      return `<li><svg width="22" height="8" aria-hidden="true"><line x1="0" x2="22" y1="4" y2="4" stroke="${st.colour}" stroke-width="${st.width + 0.4}" stroke-dasharray="${st.dash}"/></svg>${esc(s.layer)}/${esc(s.name)} ${esc(last ? ms(last[1]) : "–")}</li>`;
    });
    if (failed.length) legend.push(`<li><svg width="10" height="10" aria-hidden="true"><path class="pt-failed" d="M2,2l6,6m0,-6l-6,6"/></svg>${failed.length} failed</li>`);
    if (degraded.length) legend.push(`<li><svg width="10" height="10" aria-hidden="true"><circle class="pt-degraded" cx="5" cy="5" r="3"/></svg>${degraded.length} slow</li>`);
    const summary = `probe latency of ${r.name} over the last ${Math.round(span)} seconds: ` +
      series.map((s) => `${s.layer} ${s.name} ${s.pts.length ? ms(s.pts[s.pts.length - 1][1]) : "no data"}`).join(", ") +
      (failed.length ? `; ${failed.length} failed probes` : "");
    return `<figcaption>Probe latency <span class="muted">(log scale)</span></figcaption>
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(summary)}">${parts.join("")}</svg>
      <ul class="chart-legend">${legend.join("")}</ul>`;
  }

  /** Lag history of a standby: asks the (future) lag endpoint; hidden when it answers 404. */
  function updateLagChart(r, card) {
    const el = card.parts.lagChart;
    if (r.role === "primary" || state.lag.api === "absent") { el.hidden = true; return; }
    if (state.lag.api === "probing") return; // the first request decides whether the endpoint exists
    const last = state.lag.fetchedAt.get(r.name) || 0;
    if (Date.now() - last > LAG_REFRESH_MS) {
      state.lag.fetchedAt.set(r.name, Date.now());
      fetchLag(r.name).then(() => drawLag(r.name, el));
    } else {
      drawLag(r.name, el);
    }
  }

  async function fetchLag(name) {
    const first = state.lag.api === "unknown";
    if (first) state.lag.api = "probing";
    const since = new Date(serverNow() - LAG_WINDOW_MS).toISOString();
    try {
      const resp = await apiFetch(`/api/v1/regions/${encodeURIComponent(name)}/lag?since=${encodeURIComponent(since)}&step=${LAG_STEP_S}`);
      if (resp.status === 404 || resp.status === 405) {
        // The endpoint does not exist in this build: hide every lag chart, ask no more.
        state.lag.api = "absent";
        return;
      }
      state.lag.api = "present";
      if (!resp.ok) { state.lag.points.set(name, { error: `HTTP ${resp.status}` }); return; }
      const body = await resp.json();
      state.lag.points.set(name, { points: Array.isArray(body.points) ? body.points : [] });
    } catch (e) {
      if (first) state.lag.api = "unknown";
      state.lag.points.set(name, { error: String(e.message || e) });
    }
  }

  function drawLag(name, el) {
    const got = state.lag.points.get(name);
    if (state.lag.api !== "present" || !got) { el.hidden = true; return; }
    el.hidden = false;
    if (got.error) { setHTML(el, `<figcaption>Replication lag</figcaption><p class="muted small">History unavailable: ${esc(got.error)}</p>`); return; }
    const pts = got.points.map((p) => [Date.parse(p.at), Number(p.seconds), Number(p.bytes)]).filter((p) => Number.isFinite(p[0]));
    if (pts.length === 0) { setHTML(el, `<figcaption>Replication lag</figcaption><p class="muted small">No lag samples in the last 30 min.</p>`); return; }
    const t0 = Math.min(...pts.map((p) => p[0]));
    const t1 = Math.max(...pts.map((p) => p[0]), t0 + 1000);
    const half = (H - M.t - M.b) / 2 - 4;
    // Two stacked panels on one time axis: seconds (top) and bytes (bottom), each linear from 0.
    const panel = (idx, top, fmt, label) => {
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
      return `<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${top + half}" y2="${top + half}"/>
        <line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${top}" y2="${top}"/>
        <text class="axis" x="${M.l - 4}" y="${top + 4}" text-anchor="end">${esc(fmt(max))}</text>
        <text class="axis" x="${M.l + 4}" y="${top + 10}">${esc(label)}</text>
        <path d="${d}" fill="none" stroke="var(--line-app)" stroke-width="1.8"/>`;
    };
    const lastP = pts[pts.length - 1];
    const summary = `replication lag of ${name}, last 30 minutes: now ${seconds(lastP[1])} and ${bytes(lastP[2])} behind`;
    setHTML(el, `<figcaption>Replication lag <span class="muted">(30 min)</span></figcaption>
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(summary)}">
        ${panel(1, M.t, seconds, "seconds behind")}${panel(2, M.t + half + 8, bytes, "bytes behind")}
        <text class="axis" x="${M.l}" y="${H - 5}">${esc(clock(t0))}</text>
        <text class="axis" x="${W - M.r}" y="${H - 5}" text-anchor="end">${esc(clock(t1))}</text>
      </svg>`);
  }

  // ---- rendering: decision, plan, drill ---------------------------------

  function renderDecision(st) {
    const a = st.acting || {};
    setHTML($("acting"), `<p>${a.active ? chip("up", "acting") : chip("degraded", "not acting")}
        <span class="muted">${a.active ? "leader: may apply plans" : "observing only"}${a.decided_at ? ` · last decision ${esc(clock(a.decided_at))}` : ""}</span></p>
      <ul class="reasons">${(a.reasons || []).map((x) => `<li>${esc(x)}</li>`).join("") || "<li class=\"muted\">no reasons given</li>"}</ul>`);
    const p = st.plan;
    if (!p) { setHTML($("plan"), `<p class="muted">No plan yet.</p>`); return; }
    const providers = (p.providers || []).map((x) => {
      const res = x.result || {};
      const h = res.state === "verified" ? "up" : res.state === "failed" ? "down" : "unknown";
      const err = res.error ? `${esc(res.error)}${res.will_retry ? " (will retry)" : ""}` : "";
      return `<tr><th scope="row">${esc(x.provider)}</th><td>${chip(h, res.state)}</td><td class="num">${esc(x.attempts)}</td>
        <td class="num">${esc(shortHumantime(x.elapsed))}</td><td class="opt">${esc(clock(x.at))}</td><td class="detail">${err}</td></tr>`;
    }).join("");
    const weights = Object.entries(p.weights || {}).map(([r, w]) =>
      `<li><span class="swatch" style="background:${regionColour(st, r)}" aria-hidden="true"></span>${esc(r)} <b>${esc(w)}%</b></li>`).join("");
    setHTML($("plan"), `
      <dl class="kv">
        <div><dt>kind</dt><dd><span class="tag plan-${esc(p.kind)}">${esc(p.kind)}</span></dd></div>
        <div><dt>reason</dt><dd>${esc(p.reason)}</dd></div>
        <div><dt>weights</dt><dd><ul class="inline">${weights}</ul></dd></div>
        <div><dt>decided</dt><dd>${esc(dayClock(p.decided_at))} ${rel(p.decided_at, "(", " ago)")}</dd></div>
        <div><dt>verified</dt><dd>${p.verified_at ? `${chip("up", "verified")} ${esc(dayClock(p.verified_at))}` : chip("degraded", "not yet verified")}</dd></div>
        <div><dt>recorded</dt><dd>${p.recorded ? chip("up", "recorded in the store") : chip("degraded", "not yet recorded")}</dd></div>
        <div><dt>epoch · id</dt><dd><span class="mono">${esc(p.epoch)} · ${esc(p.id)}</span></dd></div>
      </dl>
      ${providers ? `<div class="table-wrap"><table class="providers"><caption>Providers</caption><thead><tr><th scope="col">provider</th><th scope="col">result</th>
        <th scope="col" class="num">attempts</th><th scope="col" class="num">took</th><th scope="col" class="opt">at</th><th scope="col">error</th></tr></thead><tbody>${providers}</tbody></table></div>`
        : `<p class="muted">No provider has reported yet.</p>`}`);
  }

  function renderDrill(st) {
    const d = st.drill;
    if (!d) { setHTML($("drill"), `<p class="muted">No drill running.</p>`); return; }
    // The drill object arrives with a later issue: show its scalar fields as they come.
    const rows = Object.entries(d).filter(([, v]) => v == null || typeof v !== "object" || Array.isArray(v))
      .map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(Array.isArray(v) ? v.join(", ") : v ?? "–")}</dd></div>`).join("");
    setHTML($("drill"), `<p>${chip("degraded", d.dry_run ? "dry-run drill running" : "LIVE drill running")}</p><dl class="kv">${rows}</dl>
      ${d.id ? `<div class="actions"><button type="button" class="btn danger" data-abort-drill="${esc(d.id)}">Abort drill…</button></div>` : ""}`);
  }

  // ---- the snapshot -----------------------------------------------------

  function render(st) {
    state.status = st;
    renderHeader(st);
    renderBanners(st);
    renderSplit(st);
    renderRegions(st);
    renderDecision(st);
    renderDrill(st);
    announceHealthChanges(st);
    scheduleEventsOnChange(st);
  }

  /** Tells screen-reader users when a region's health changes (not at every snapshot). */
  function announceHealthChanges(st) {
    const msgs = [];
    for (const r of st.regions || []) {
      const before = state.healthByRegion.get(r.name);
      if (before && before !== r.health) msgs.push(`${r.name} is now ${r.health}, weight ${r.weight}%`);
      state.healthByRegion.set(r.name, r.health);
    }
    if (msgs.length) $("sr-announce").textContent = msgs.join(". ");
  }

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

  // ---- events timeline --------------------------------------------------

  function scheduleEventsOnChange(st) {
    const sig = signature(st);
    if (sig === state.sig) return;
    const first = state.sig === "";
    state.sig = sig;
    if (first) { refreshEvents(true); return; }
    // Debounce (changes come in bursts) but never wait longer than EVENTS_MAX_WAIT_MS.
    const now = Date.now();
    if (!state.eventsTimer) state.eventsFirstAsk = now;
    clearTimeout(state.eventsTimer);
    const wait = Math.min(EVENTS_DEBOUNCE_MS, Math.max(0, state.eventsFirstAsk + EVENTS_MAX_WAIT_MS - now));
    state.eventsTimer = setTimeout(() => { state.eventsTimer = null; refreshEvents(false); }, wait);
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

  /** Reads the newest page; `reset` drops what is shown (filters changed), else merges by id. */
  async function refreshEvents(reset) {
    const filterKey = `${$("f-region").value}|${$("f-kind").value}`;
    try {
      const resp = await apiFetch(eventsUrl(null));
      const body = await resp.json().catch(() => null);
      if (filterKey !== `${$("f-region").value}|${$("f-kind").value}`) return; // filters changed meanwhile
      if (resp.status === 401 || resp.status === 403) {
        $("events-msg").textContent = `This orchestrator requires a token to read events (HTTP ${resp.status}): ${body && body.error ? body.error : "no token or a refused one"}. Enter it in any action dialog; it is kept for this tab.`;
        return;
      }
      if (!resp.ok) { $("events-msg").textContent = `Events unavailable: ${body && body.error ? body.error : `HTTP ${resp.status}`}`; return; }
      const page = body.events || [];
      const fresh = page.filter((e) => !state.eventIds.has(e.id));
      // A full page of unknown events means there may be a gap: start over from this page.
      if (reset || state.events.length === 0 || fresh.length === page.length) {
        state.events = page;
        state.nextBefore = body.next_before;
      } else {
        state.events = fresh.concat(state.events);
      }
      state.eventIds = new Set(state.events.map((e) => e.id));
      $("events-msg").textContent = state.events.length ? "" : "No events match.";
      drawEvents(reset ? new Set() : new Set(fresh.map((e) => e.id)));
    } catch (e) {
      $("events-msg").textContent = `Events unavailable: ${e.message || e}`;
    }
  }

  async function loadOlder() {
    if (!state.nextBefore || state.eventsLoading) return;
    state.eventsLoading = true;
    const btn = $("events-more");
    btn.disabled = true;
    try {
      const resp = await apiFetch(eventsUrl(state.nextBefore));
      const body = await resp.json().catch(() => null);
      if (!resp.ok) { $("events-msg").textContent = `Events unavailable: ${body && body.error ? body.error : `HTTP ${resp.status}`}`; return; }
      const older = (body.events || []).filter((e) => !state.eventIds.has(e.id));
      state.events = state.events.concat(older);
      for (const e of older) state.eventIds.add(e.id);
      state.nextBefore = body.next_before;
      drawEvents(new Set());
    } catch (e) {
      $("events-msg").textContent = `Events unavailable: ${e.message || e}`;
    } finally {
      state.eventsLoading = false;
      btn.disabled = false;
    }
  }

  function eventLine(e, isNew) {
    const d = e.details || {};
    let extra = "";
    if (e.kind === "plan" && d.weights) extra = `<span class="ev-weights">→ ${esc(weightsText(d.weights))}</span>`;
    if (e.kind === "transition" && d.to) extra = chip(d.to, `now ${d.to}`);
    if (e.kind === "alarm") extra = d.cleared_at ? chip("up", `cleared ${clock(d.cleared_at)}`) : chip("down", "active");
    const json = JSON.stringify(d, null, 2);
    return `<li class="ev ev-${esc(e.kind)}${isNew ? " ev-new" : ""}" data-kind="${esc(e.kind)}">
      <time datetime="${esc(e.at)}" title="${esc(e.at)}">${esc(dayClock(e.at))}</time>
      <span class="tag kind-${esc(e.kind)}">${esc(e.kind)}</span>
      <div class="ev-body"><details><summary><span class="ev-msg">${esc(e.message)}</span> ${extra}</summary><pre>${esc(json)}</pre></details></div>
    </li>`;
  }

  function drawEvents(newIds) {
    setHTML($("events"), state.events.map((e) => eventLine(e, newIds.has(e.id))).join(""));
    $("events-more").hidden = !state.nextBefore;
  }

  function fillRegionFilter(regions) {
    const sel = $("f-region");
    const current = sel.value;
    sel.innerHTML = `<option value="">all</option>${regions.map((r) => `<option value="${esc(r.name)}">${esc(r.name)}</option>`).join("")}`;
    sel.value = regions.some((r) => r.name === current) ? current : "";
  }

  // ---- operator actions -------------------------------------------------

  const token = {
    get: () => sessionStorage.getItem(TOKEN_KEY) || "",
    set: (t) => { sessionStorage.setItem(TOKEN_KEY, t); $("token-forget").hidden = false; },
    clear: () => { sessionStorage.removeItem(TOKEN_KEY); $("token-forget").hidden = true; },
  };

  /** fetch() that sends the operator token when there is one (reads stay same-origin). */
  function apiFetch(url, opts = {}) {
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    const t = token.get();
    if (t && !headers.Authorization) headers.Authorization = `Bearer ${t}`;
    return fetch(url, Object.assign({}, opts, { headers, cache: "no-store" }));
  }

  /** An idempotency key per confirmation, so a retried click applies once. */
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  let dialogSpec = null;

  /**
   * Opens the confirmation dialog. `spec` = { title, confirm, danger, body(): html,
   * request(): { url, body } | { error } } — body() is re-rendered on every input so
   * the plan preview follows the form.
   */
  function openDialog(spec) {
    dialogSpec = Object.assign({ key: newKey() }, spec);
    const dlg = $("action-dialog");
    $("dlg-title").textContent = spec.title;
    $("dlg-body").innerHTML = spec.form || "";
    $("dlg-confirm").textContent = spec.confirm;
    $("dlg-confirm").disabled = false;
    $("dlg-error").hidden = true;
    $("dlg-ok").hidden = true;
    $("dlg-reason").value = "";
    $("dlg-token").value = "";
    $("dlg-token-row").hidden = Boolean(token.get());
    $("dlg-token").required = !token.get();
    updatePreview();
    if (!dlg.open) dlg.showModal();
    const first = dlg.querySelector("#dlg-body input, #dlg-body select, #dlg-reason");
    if (first) first.focus();
  }

  function updatePreview() {
    const box = $("dlg-body").querySelector("[data-preview]");
    if (box && dialogSpec) box.innerHTML = dialogSpec.preview();
  }

  function dialogError(html) {
    const el = $("dlg-error");
    el.innerHTML = html;
    el.hidden = false;
  }

  /** The route does not exist in this build (rather than "no such region" from a real handler). */
  const routeMissing = (status, body) => status === 405 || (status === 404 && (!body || typeof body.error !== "string" || body.error.startsWith("no such route")));

  async function confirmDialog(ev) {
    ev.preventDefault();
    if (!dialogSpec) return;
    const form = $("dlg-form");
    if (!form.reportValidity()) return;
    const req = dialogSpec.request();
    if (req.error) { dialogError(esc(req.error)); return; }
    const reason = $("dlg-reason").value.trim();
    if (!reason) { dialogError("A reason is required."); return; }
    const typed = $("dlg-token").value.trim();
    const tok = typed || token.get();
    if (!tok) { dialogError("An operator token is required."); return; }
    if (typed) token.set(typed);
    $("dlg-confirm").disabled = true;
    $("dlg-error").hidden = true;
    let resp;
    let body = null;
    try {
      resp = await fetch(req.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${tok}`, "Idempotency-Key": dialogSpec.key },
        body: JSON.stringify(Object.assign({}, req.body, { reason })),
      });
      body = await resp.json().catch(() => null);
    } catch (e) {
      $("dlg-confirm").disabled = false;
      dialogError(`Could not reach the orchestrator: ${esc(e.message || e)}`);
      return;
    }
    $("dlg-confirm").disabled = false;
    const message = body && typeof body.error === "string" ? body.error : "";
    if (resp.ok) {
      const id = body && (body.id || body.drill_id || body.plan_id);
      const ok = $("dlg-ok");
      ok.textContent = `Accepted${id ? ` (id ${id})` : ""}. The dashboard updates when the orchestrator acts.`;
      ok.hidden = false;
      $("dlg-confirm").disabled = true;
      // Close this dialog shortly — unless the operator has opened another one meanwhile.
      const shown = dialogSpec;
      setTimeout(() => { if ($("action-dialog").open && dialogSpec === shown) $("action-dialog").close(); }, 1500);
      // The audit entry is written just after the answer: read the timeline now and again shortly.
      refreshEvents(false);
      setTimeout(() => refreshEvents(false), 1200);
    } else if (routeMissing(resp.status, body)) {
      dialogError(`<strong>Not available in this version.</strong> This orchestrator has no <code>${esc(req.url.replace(/\?.*$/, ""))}</code> API yet (HTTP ${resp.status}).`);
    } else if (resp.status === 401) {
      // The token was refused: forget it and ask again.
      token.clear();
      $("dlg-token-row").hidden = false;
      $("dlg-token").required = true;
      dialogError(`<strong>Refused (401):</strong> ${esc(message || "the operator token was not accepted")}. Enter a valid token.`);
      $("dlg-token").focus();
    } else if (resp.status < 500) {
      dialogError(`<strong>Refused (${resp.status}):</strong> ${esc(message || resp.statusText || "no reason given")}`);
    } else {
      const rid = resp.headers.get("x-request-id");
      dialogError(`<strong>Server error (${resp.status}):</strong> ${esc(message || "no detail")}${rid ? ` <span class="mono">request ${esc(rid)}</span>` : ""}`);
    }
  }

  /** Candidates to take a drained or evacuated region's share: not down, not drained; same-city before DR. */
  function successor(st, name) {
    const others = (st.regions || []).filter((r) => r.name !== name && r.health !== "down" && !r.maintenance);
    others.sort((a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9));
    return others[0];
  }

  function weightsTable(rows) {
    const names = (state.status.regions || []).map((r) => r.name);
    return `<table class="preview"><thead><tr><th scope="col"></th>${names.map((n) => `<th scope="col" class="num">${esc(n)}</th>`).join("")}</tr></thead>
      <tbody>${rows.map(([label, w]) => `<tr><th scope="row">${esc(label)}</th>${names.map((n) => `<td class="num">${esc(w[n] ?? 0)}%</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  const currentWeights = () => Object.fromEntries((state.status.regions || []).map((r) => [r.name, r.weight]));

  function openMaintenance(name) {
    const st = state.status;
    const r = st && (st.regions || []).find((x) => x.name === name);
    if (!r) return;
    const drain = !r.maintenance;
    openDialog({
      title: drain ? `Drain ${name} for maintenance` : `End maintenance of ${name}`,
      confirm: drain ? `Drain ${name}` : `Undrain ${name}`,
      form: `<p>${drain ? `Moves all traffic away from <b>${esc(name)}</b> and keeps it away until maintenance ends.`
        : `Lets <b>${esc(name)}</b> take traffic again (back toward its normal weight of ${esc(r.normal_weight)}%).`}</p>
        <div data-preview></div>`,
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
        return `<h3>Plan it will apply <span class="muted small">(expected; the orchestrator decides and records the actual plan)</span></h3>
          ${weightsTable([["now", now], ["after", next]])}<p class="small">${esc(note)}</p>`;
      },
      request: () => ({ url: `/api/v1/regions/${encodeURIComponent(name)}/maintenance`, body: { drain } }),
    });
  }

  function parseSteps(text) {
    const steps = String(text).split(/[\s,]+/).filter(Boolean).map(Number);
    if (steps.length === 0 || steps.some((s) => !Number.isInteger(s) || s < 1 || s > 100)) return null;
    for (let i = 1; i < steps.length; i += 1) if (steps[i] <= steps[i - 1]) return null;
    return steps;
  }

  function openDrill(name) {
    const st = state.status;
    if (!st) return;
    const candidates = (st.regions || []).filter((r) => r.normal_weight > 0);
    const pick = name || (candidates[0] && candidates[0].name) || "";
    openDialog({
      title: "Start a failover drill",
      confirm: "Start drill",
      form: `<div class="grid2">
          <label class="field">Evacuate region <select id="dr-region">${(st.regions || []).map((r) =>
            `<option value="${esc(r.name)}"${r.name === pick ? " selected" : ""}>${esc(r.name)} (${esc(r.role)}, ${esc(r.weight)}%)</option>`).join("")}</select></label>
          <label class="field">Steps (% of its share moved) <input id="dr-steps" value="50, 100" inputmode="numeric" aria-describedby="dr-steps-hint"></label>
          <label class="field">Hold each step (seconds) <input id="dr-hold" type="number" min="0" max="3600" value="30"></label>
          <fieldset class="field"><legend>Mode</legend>
            <label><input type="radio" name="dr-mode" value="dry" checked> dry run (decide and record; providers untouched)</label>
            <label><input type="radio" name="dr-mode" value="live"> live (moves real traffic)</label>
          </fieldset>
        </div>
        <p id="dr-steps-hint" class="hint">Increasing percentages, e.g. <code>50, 100</code>. After the last hold the drill rolls back automatically.</p>
        <div data-preview></div>`,
      preview: () => {
        const region = $("dr-region").value;
        const steps = parseSteps($("dr-steps").value);
        const live = document.querySelector('input[name="dr-mode"]:checked').value === "live";
        $("dlg-confirm").textContent = live ? "Start LIVE drill" : "Start dry-run drill";
        if (!steps) return `<p class="dlg-error">Steps must be increasing whole percentages between 1 and 100.</p>`;
        const now = currentWeights();
        const to = successor(state.status, region);
        if (!to) return `<p class="dlg-error">No healthy region can take ${esc(region)}'s share.</p>`;
        const rows = [["now", now]];
        for (const s of steps) {
          const w = Object.assign({}, now);
          const moved = Math.round(((now[region] || 0) * s) / 100);
          w[region] -= moved;
          w[to.name] = (w[to.name] || 0) + moved;
          rows.push([`step ${s}%`, w]);
        }
        rows.push(["rollback", now]);
        return `<h3>Plan it will apply <span class="muted small">(expected)</span></h3>${weightsTable(rows)}
          <p class="small">${live ? "<b>LIVE:</b> real traffic moves to " : "Dry run: nothing is sent to the providers; target "}${esc(to.name)}; each step holds ${esc($("dr-hold").value)} s.</p>`;
      },
      request: () => {
        const steps = parseSteps($("dr-steps").value);
        const hold = Number($("dr-hold").value);
        if (!steps) return { error: "Steps must be increasing whole percentages between 1 and 100." };
        if (!Number.isInteger(hold) || hold < 0) return { error: "Hold must be a whole number of seconds." };
        const dry = document.querySelector('input[name="dr-mode"]:checked').value !== "live";
        return { url: "/api/v1/drills", body: { evacuate: $("dr-region").value, steps, hold_seconds: hold, dry_run: dry } };
      },
    });
  }

  function openAbort(id) {
    openDialog({
      title: "Abort the drill",
      confirm: "Abort drill",
      form: `<p>Stops drill <span class="mono">${esc(id)}</span> and rolls traffic back to the plan it started from.</p><div data-preview></div>`,
      preview: () => {
        const st = state.status;
        const before = st.drill && st.drill.before_weights;
        return before ? `<h3>Plan it will apply</h3>${weightsTable([["now", currentWeights()], ["after", before]])}` : `<p class="small">Traffic returns to the weights from before the drill.</p>`;
      },
      request: () => ({ url: `/api/v1/drills/${encodeURIComponent(id)}/abort`, body: {} }),
    });
  }

  // ---- live connection --------------------------------------------------

  function setLive(mode) {
    if (state.live === mode) return;
    state.live = mode;
    const el = $("live");
    el.className = `live ${mode}`;
    $("live-text").textContent = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…", stale: "live, no update" }[mode];
  }

  function connect() {
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
      render(st);
    });
    es.addEventListener("error", () => {
      setLive("reconnecting");
      // A CLOSED source (e.g. a non-200 answer) does not retry by itself: start a new one.
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    });
  }

  /** Once a second: relative times and the age of the last snapshot (no network). */
  function tick() {
    fillRelTimes(document.body);
    if (state.receivedAt) {
      const age = Date.now() - state.receivedAt;
      $("updated").textContent = `updated ${duration(age)} ago`;
      if (state.live === "live" && age > STALE_AFTER_MS) setLive("stale");
    }
  }

  // ---- wiring -----------------------------------------------------------

  $("f-region").addEventListener("change", () => refreshEvents(true));
  $("f-kind").addEventListener("change", () => refreshEvents(true));
  $("event-filters").addEventListener("submit", (e) => e.preventDefault());
  $("events-more").addEventListener("click", loadOlder);
  $("drill-start").addEventListener("click", () => openDrill(""));
  $("token-forget").addEventListener("click", () => token.clear());
  $("token-forget").hidden = !token.get();
  $("dlg-form").addEventListener("submit", confirmDialog);
  $("dlg-form").addEventListener("input", updatePreview);
  $("dlg-form").addEventListener("change", updatePreview);
  $("dlg-cancel").addEventListener("click", () => $("action-dialog").close());
  $("action-dialog").addEventListener("close", () => { dialogSpec = null; });
  // Abort buttons live in re-rendered HTML (banner, drill panel): one delegated handler.
  document.addEventListener("click", (e) => {
    const b = e.target.closest && e.target.closest("[data-abort-drill]");
    if (b) openAbort(b.dataset.abortDrill);
  });

  // A hook for the end-to-end test (escaping is checked directly); not used by the page.
  window.__dashboard = { esc, parseSteps };

  connect();
  setInterval(tick, 1000);
})();
