// Formatting: turns the status's numbers, times and states into the words and
// classes the page shows. Pure functions of their arguments (no DOM, no state),
// except `dayClock`, which compares with today's date.

const HEALTHS = ["up", "degraded", "down", "unknown"];
/** The icon shown before each state word, so a state never depends on colour alone. */
export const HEALTH_ICON = { up: "✓", degraded: "▲", down: "✕", unknown: "?" };
// Region colours in the split bar (white text on each passes WCAG AA).
const REGION_COLOURS = ["#1f55b3", "#6a3d9a", "#00695c", "#8c4a00", "#37474f", "#ad1457"];

/** A health value usable as a CSS class (anything unexpected is "unknown"). */
export const hcls = (h) => (HEALTHS.includes(h) ? h : "unknown");

/** Maps a free-form lag state to a health colour; the word itself is always shown. */
export function lagHealth(s) {
  const v = s.toLowerCase();
  if (/(exceed|critical|broken|down|stopped|disconnect|stale|fail)/.test(v)) return "down";
  if (/(warn|lagging|behind|slow|catchup|catching|paused)/.test(v)) return "degraded";
  if (/(ok|stream|sync|within|healthy|up)/.test(v)) return "up";
  return "unknown";
}

/** The colour of a region: by its position in the status, so it is stable between snapshots. */
export function regionColour(st, name) {
  const i = (st.regions || []).findIndex((r) => r.name === name);
  return REGION_COLOURS[(i < 0 ? 0 : i) % REGION_COLOURS.length];
}

const pad = (n) => String(n).padStart(2, "0");

/** "14:03:07", local time. */
export function clock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? "–" : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The clock for today, the date and clock for any other day. */
export function dayClock(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return "–";
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? clock(d) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

/** A duration in the two largest units: "2 min 3 s", "1 d 4 h". */
export function duration(ms) {
  if (!Number.isFinite(ms)) return "–";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A latency in milliseconds, with the precision it deserves. */
export function ms(v) {
  if (v == null || !Number.isFinite(v)) return "–";
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  if (v < 10000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}

/** A byte count in binary units: "1.5 MiB". */
export function bytes(v) {
  if (v == null || !Number.isFinite(Number(v))) return "–";
  let n = Number(v);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** A lag in seconds: "2.50 s" under a minute, a duration above. */
export function seconds(v) {
  if (v == null || !Number.isFinite(Number(v))) return "–";
  const n = Number(v);
  return n < 60 ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} s` : duration(n * 1000);
}

/** "4ms 406us 105ns" (humantime) → "4ms 406us": enough precision to read. */
export const shortHumantime = (s) => String(s ?? "").split(" ").slice(0, 2).join(" ");

/** "postgres://user@10.0.0.1:5432/db" → "10.0.0.1:5432": the full target is in the title. */
export function shortTarget(t) {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(String(t ?? ""));
  return m ? m[1] : String(t ?? "");
}

/** "http://10.0.3.5:8080" when `u` is an http(s) URL (never `javascript:` and the like), else null. */
export function httpUrl(u) {
  try {
    const url = new URL(String(u ?? ""));
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (_) {
    return null;
  }
}

/** Drops any `user:password@` from URLs in a text (the server sends none; this keeps it so). */
export const redactUrls = (t) => String(t ?? "").replace(/(\/\/)[^/@\s]*@/g, "$1");

/** What each alarm kind (alarm.rs `AlarmKind`) is called on the page. */
const ALARM_TITLES = {
  all_down: "All regions down",
  region_down: "Region down",
  no_failover_target: "No failover target",
  lag_blocks_failover: "Lag blocks failover",
  budget_spent: "Failover budget spent",
  quorum_not_reached: "Quorum not reached",
  provider_failing: "Provider failing",
  store_unreachable: "Store unreachable",
  promotion_failed: "Promotion failed",
  provider_drift: "Provider drift",
  propagation_slow: "DNS propagation slow",
  suspect_path: "Suspect network path",
  coordination_lost: "Coordination lost",
  stale_write_refused: "Stale write refused",
  store_write_rejected: "Store refused a write (dead-lettered)",
};

/** "suspect_path" → "Suspect network path"; an unknown kind → its words ("lag_high" → "Lag high"). */
export function alarmTitle(kind) {
  const k = String(kind ?? "");
  if (Object.hasOwn(ALARM_TITLES, k)) return ALARM_TITLES[k];
  const words = k.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** `{ primary: 80, standby: 20 }` → "primary 80 · standby 20". */
export const weightsText = (w) => Object.entries(w || {}).map(([r, v]) => `${r} ${v}`).join(" · ");
