// End-to-end test of the dashboard against the three-orchestrator lab
// (`fo-lab --orchestrators 3`: one orchestrator per region on a three-member etcd
// cluster), in Debian's Chromium. `scripts/e2e.sh` starts that lab after the
// single-orchestrator tests and sets:
//   FO_CLUSTER_URLS          "primary=http://… standby=http://… dr=http://…" (each orchestrator's API and dashboard)
//   FO_CLUSTER_CONTROL_URL   the lab's control endpoint (lab/src/cli.rs: /vantages/{v}/paths/{region} …)
//   FO_CLUSTER_OPERATOR_TOKEN  an operator token every orchestrator accepts
//
// Tests run in order: the leader's page, a follower's page, an action sent to a
// follower anyway, then one vantage's path to the primary faulted and cleared.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { launchBrowser, watchConsole, screenshot, getJsonAt, waitFor } = require("./browser.js");

const URLS = Object.fromEntries((process.env.FO_CLUSTER_URLS || "").split(/\s+/).filter(Boolean)
  .map((kv) => kv.split("=")).map(([k, v]) => [k, (v || "").replace(/\/$/, "")]));
const CONTROL = (process.env.FO_CLUSTER_CONTROL_URL || "").replace(/\/$/, "");
const OPERATOR_TOKEN = process.env.FO_CLUSTER_OPERATOR_TOKEN || "";
const VANTAGES = ["primary", "standby", "dr"];
if (VANTAGES.some((v) => !URLS[v]) || !CONTROL || !OPERATOR_TOKEN) {
  throw new Error("set FO_CLUSTER_URLS (primary=… standby=… dr=…), FO_CLUSTER_CONTROL_URL and FO_CLUSTER_OPERATOR_TOKEN (scripts/e2e.sh does)");
}

// The lag history of a region without lag answers 404, and the action sent to a follower 409.
const EXPECTED_FAILURES = [/\/api\/v1\/regions\/[^/]+\/lag\b/, /\/api\/v1\/drills\b/];

let browser;
let leader; // the vantage whose orchestrator leads
let follower; // another one, whose path to the primary is faulted below
let epoch; // the leader's epoch
const consoleErrors = [];

const statusOf = async (v) => (await getJsonAt(`${URLS[v]}/api/v1/status`)).body;
const card = (p, name) => p.locator(`.card[data-region="${name}"]`);

async function openDashboard(vantage, label) {
  const p = await browser.context.newPage();
  watchConsole(p, label, consoleErrors, EXPECTED_FAILURES);
  await p.goto(`${URLS[vantage]}/`);
  await card(p, "dr").waitFor({ timeout: 15000 });
  return p;
}

async function control(path, body) {
  const r = await fetch(`${CONTROL}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  assert.equal(r.status, 200, `control ${path}: HTTP ${r.status} ${await r.text()}`);
}

before(async () => {
  // One leader that every orchestrator follows, its plan verified, and every vantage's view of every region fresh on it.
  let seen = [];
  const agreed = await waitFor(async () => {
    seen = await Promise.all(VANTAGES.map((v) => statusOf(v).catch(() => null)));
    if (seen.some((s) => !s)) return null;
    const leaders = seen.filter((s) => s.leadership.leader);
    if (leaders.length !== 1) return null;
    const l = leaders[0];
    const allFollow = seen.every((s) => s.leadership.holder === l.vantage && s.leadership.epoch === l.leadership.epoch);
    const views = l.regions.every((r) => r.views.length === 3 && r.views.every((v) => v.fresh && v.health === "up"));
    return allFollow && views && l.plan && l.plan.verified_at ? l : null;
  }, 60000, "one leader, followed by all, with a verified plan and three fresh views of every region",
  async () => `leadership: ${JSON.stringify(seen.map((s) => s && s.leadership))}`);
  leader = agreed.vantage;
  epoch = agreed.leadership.epoch;
  follower = VANTAGES.find((v) => v !== leader);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
});

test("the leader's page says it leads, shows the epoch, etcd connected, the quorum, and three fresh vantage chips per region", { timeout: 30000 }, async () => {
  const p = await openDashboard(leader, "leader");
  await p.locator('#coord [data-field="coord-backend"][data-connected="true"]').waitFor({ timeout: 10000 });
  assert.equal(await p.locator('#coord [data-field="coord-leader"]').innerText(), `leader (${leader}, this orchestrator)`);
  assert.equal(await p.locator('#coord [data-field="coord-epoch"]').innerText(), `epoch ${epoch}`);
  assert.match(await p.locator('#coord [data-field="coord-backend"]').innerText(), /^✓ etcd connected .*· (127\.0\.0\.1:\d+(, )?){3}$/);
  assert.equal(await p.locator('#coord [data-field="coord-quorum"]').innerText(), "quorum 2 of 3 vantages");
  assert.equal(await p.locator('[data-banner="not-leader"]').count(), 0);
  for (const region of VANTAGES) {
    const chips = card(p, region).locator(".vchip");
    await p.waitForFunction((r) => document.querySelectorAll(`.card[data-region="${r}"] .vchip`).length === 3, region, { timeout: 10000 });
    const shown = await chips.evaluateAll((els) => els.map((e) => [e.dataset.vantage, e.dataset.health, e.dataset.fresh]));
    // This orchestrator's own view first, then its peers'.
    assert.equal(shown[0][0], leader, `own view first on ${region}`);
    assert.deepEqual(shown.map((c) => c[0]).sort(), [...VANTAGES].sort(), `one chip per vantage on ${region}`);
    assert.deepEqual(shown.map((c) => c.slice(1)), [["up", "true"], ["up", "true"], ["up", "true"]], `every vantage sees ${region} up`);
    const tops = await chips.evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
    assert.equal(new Set(tops).size, 1, `the three chips of ${region} stand side by side (tops ${tops})`);
    assert.equal(await card(p, region).locator('[data-field="quorum-note"]').count(), 0, `no quorum note on ${region} while all agree`);
  }
  assert.equal(await p.locator("#drill-start").isDisabled(), false, "the leader's actions are enabled");
  await screenshot(p, "cluster-leader");
  await p.close();
});

test("a follower's page says it follows the leader, links to its dashboard, and disables every action with a title naming it", { timeout: 30000 }, async () => {
  const p = await openDashboard(follower, "follower");
  const who = p.locator('#coord [data-field="coord-leader"]');
  await p.waitForFunction(() => /following/.test(document.querySelector('#coord [data-field="coord-leader"]').textContent), null, { timeout: 10000 });
  assert.equal(await who.innerText(), `following ${leader} · open ${leader}'s dashboard`);
  assert.equal(await who.locator("a").getAttribute("href"), `${URLS[leader]}/`);
  assert.equal(await p.locator('#coord [data-field="coord-epoch"]').innerText(), `epoch ${epoch}`);
  assert.match(await p.locator('[data-banner="not-leader"]').innerText(), new RegExp(`${leader} leads in epoch ${epoch}`));
  const buttons = [p.locator("#drill-start"), ...VANTAGES.map((r) => card(p, r).locator('[data-action="maintenance"]')), card(p, "primary").locator('[data-action="drill"]')];
  for (const b of buttons) {
    assert.equal(await b.isDisabled(), true, "disabled on a follower");
    assert.equal(await b.getAttribute("title"), `Only the leader acts: ${leader} leads (epoch ${epoch}). Use ${leader}'s dashboard.`);
  }
  await screenshot(p, "cluster-follower");
  await p.close();
});

test("an action that still reaches a follower is refused (409) and the dialog names and links the leader", { timeout: 30000 }, async () => {
  const p = await openDashboard(follower, "follower-409");
  await p.locator("#drill-start[disabled]").waitFor({ timeout: 10000 });
  // As if leadership had moved after the page drew the button: enable it and click in one step.
  await p.evaluate(() => { const b = document.getElementById("drill-start"); b.disabled = false; b.click(); });
  await p.locator("#action-dialog").waitFor({ state: "visible" });
  await p.locator('input[name="dr-mode"][value="dry"]').check();
  await p.locator("#dlg-token").fill(OPERATOR_TOKEN);
  await p.locator("#dlg-reason").fill("e2e: a drill sent to a follower");
  await p.locator("#dlg-confirm").click();
  await p.locator("#dlg-error").waitFor({ state: "visible", timeout: 10000 });
  const text = await p.locator("#dlg-error").innerText();
  assert.match(text, /^Refused \(409\): not the leader\. refused: this orchestrator is not the leader/);
  assert.ok(text.includes(`the leader, ${leader}, at ${URLS[leader]}`), text);
  assert.equal(await p.locator("#dlg-error a[data-leader-link]").getAttribute("href"), `${URLS[leader]}/`);
  for (const v of [follower, leader]) assert.equal((await statusOf(v)).drill, null, `no drill runs on ${v}`);
  await p.close();
});

test("faulting one vantage's path to the primary shows the quorum note on the primary's card; traffic stays; clearing it removes the note", { timeout: 60000 }, async () => {
  const p = await openDashboard(leader, "leader-fault");
  const note = card(p, "primary").locator('[data-field="quorum-note"]');
  assert.equal(await note.count(), 0, "no note before the fault");
  await control(`/vantages/${follower}/paths/primary`, { refuse: true });
  try {
    await note.waitFor({ timeout: 20000 });
    await p.waitForFunction((f) => {
      const chip = document.querySelector(`.card[data-region="primary"] .vchip[data-vantage="${f}"]`);
      return chip && chip.dataset.health === "down";
    }, follower, { timeout: 10000 });
    const others = VANTAGES.filter((v) => v !== follower);
    const text = await note.innerText();
    assert.match(text, new RegExp(`^primary: down from ${follower} only \\(1 of 3 vantages, quorum 2\\); up from (${others.join("|")}), (${others.join("|")})$`));
    for (const v of others) assert.equal(await card(p, "primary").locator(`.vchip[data-vantage="${v}"]`).getAttribute("data-health"), "up");
    // Its chip's title says why: the first line, the freshness, then the failing checks.
    const why = (await card(p, "primary").locator(`.vchip[data-vantage="${follower}"]`).getAttribute("title")).split("\n");
    assert.equal(why[0].startsWith(`${follower} sees primary down`), true, why[0]);
    assert.ok(why.length > 2, `the failing checks are in the title: ${why.join(" | ")}`);
    // One vantage is no quorum: the primary keeps its traffic.
    assert.equal(Number(await p.locator('#split .seg[data-region="primary"]').getAttribute("data-weight")), 80);
    await screenshot(p, "cluster-quorum-note");
  } finally {
    await control(`/vantages/${follower}/paths/primary/clear`);
  }
  await note.waitFor({ state: "detached", timeout: 20000 });
  assert.equal(await card(p, "primary").locator(`.vchip[data-vantage="${follower}"]`).getAttribute("data-health"), "up");
  await p.close();
});

test("no console errors on any page", () => {
  assert.deepEqual(consoleErrors, []);
});
