// End-to-end test of the dashboard in a real browser (Debian's Chromium, driven by
// playwright-core) against a running lab: `scripts/e2e.sh` starts the lab and sets
// FO_URL (API + dashboard) and FO_CONTROL_URL (the lab's failure-injection endpoint).
//
// Tests run in order and share one browser: they walk the lab through
// normal → primary broken (failed over) → restored. Nothing is skipped: a build without
// an API the page drives (maintenance, drills, viewer tokens) fails, and so does a run
// without the tokens scripts/e2e.sh exports (FO_OPERATOR_TOKEN, FO_VIEWER_TOKEN). Two
// tests feed the page a synthetic status or a mocked error response; their names say so.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { ROOT, ARTIFACTS, singleLab, launchBrowser, watchConsole, screenshot, getJsonAt, waitFor } = require("./browser.js");

const { url: FO_URL, controlUrl: FO_CONTROL_URL, operatorToken: OPERATOR_TOKEN, viewerToken: VIEWER_TOKEN } = singleLab();

let browser; // Chromium on a fresh profile
let page; // the main laptop-sized page
const consoleErrors = [];

// Requests the page makes on purpose that fail: the lag history of a region without a
// database (404, the chart is hidden), the maintenance answers mocked below, and the
// drills refused for a bad or viewer token (401, 403). Chromium logs each such non-2xx
// response as a console error; those and only those are allowed.
const EXPECTED_FAILURES = [/\/api\/v1\/regions\/[^/]+\/lag\b/, /\/api\/v1\/regions\/[^/]+\/maintenance$/, /\/api\/v1\/drills\b/];

async function newPage(label, viewport = { width: 1280, height: 900 }) {
  const p = await browser.context.newPage();
  await p.setViewportSize(viewport);
  watchConsole(p, label, consoleErrors, EXPECTED_FAILURES);
  return p;
}

async function control(action, region = "primary") {
  const r = await fetch(`${FO_CONTROL_URL}/regions/${region}/app/${action}`, { method: "POST" });
  assert.equal(r.status, 200, `control ${region}/${action}: HTTP ${r.status} ${await r.text()}`);
}

const getJson = (p) => getJsonAt(`${FO_URL}${p}`);

/** Polls the server until `pred(status)` holds. */
async function waitForStatus(pred, timeoutMs, what) {
  let last = null;
  return waitFor(async () => {
    last = (await getJson("/api/v1/status")).body;
    return last && pred(last) ? last : null;
  }, timeoutMs, what, async () => {
    const shown = last ? { weights: (last.regions || []).map((r) => [r.name, r.weight, r.health, r.maintenance]), reasons: last.acting && last.acting.reasons, hold: last.operator_hold, drill: last.drill } : null;
    return `last status: ${JSON.stringify(shown)}`;
  });
}

const card = (p, name) => p.locator(`.card[data-region="${name}"]`);
const cardHealth = (p, name) => card(p, name).locator('[data-field="health"]');
const splitWeight = async (p, name) => {
  const seg = p.locator(`#split .seg[data-region="${name}"]`);
  return (await seg.count()) ? Number(await seg.getAttribute("data-weight")) : 0;
};

/** The drills API the page drives: fails the calling test (never skips it) when this build lacks it. */
async function assertDrillsApi() {
  const { status, body } = await getJson("/api/v1/openapi.json");
  assert.equal(status, 200, "GET /api/v1/openapi.json");
  for (const [method, p] of [["post", "/api/v1/drills"], ["get", "/api/v1/drills"], ["get", "/api/v1/drills/{id}"], ["post", "/api/v1/drills/{id}/abort"]]) {
    assert.ok(body && body.paths && body.paths[p] && body.paths[p][method], `the OpenAPI document lists ${method.toUpperCase()} ${p}`);
  }
  // Routed and guarded: refused for the missing token, not 404 "no such route" or 405.
  const r = await fetch(`${FO_URL}/api/v1/drills`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  assert.equal(r.status, 401, `POST /api/v1/drills without a token: HTTP ${r.status} ${await r.text()}`);
}

before(async () => {
  browser = await launchBrowser();
  page = await newPage("laptop");
  // Survives only if the page never reloads: checked after the failover.
  await page.addInitScript(() => { window.__loadedAt = window.__loadedAt || Date.now(); });
  await page.goto(`${FO_URL}/?events_page=10`);
});

after(async () => {
  if (browser) await browser.close();
});

test("the page shows one card per region: primary, standby, dr", { timeout: 30000 }, async () => {
  await page.locator(".card[data-region]").nth(2).waitFor({ timeout: 15000 });
  const names = await page.locator(".card[data-region]").evaluateAll((els) => els.map((e) => e.dataset.region));
  assert.deepEqual(names, ["primary", "standby", "dr"]);
  // Reads are public in this lab: no sign-in step, but "Sign in" is offered.
  assert.equal(await page.locator("#signin").isVisible(), false);
  assert.equal(await page.locator("#signin-open").isVisible(), true);
  assert.equal(await page.locator("#signout").isVisible(), false);
  for (const name of names) {
    const c = card(page, name);
    assert.match(await c.locator("h3").innerText(), new RegExp(`^${name}$`));
    assert.match(await cardHealth(page, name).innerText(), /UP|DEGRADED|DOWN|UNKNOWN/);
    // Health per layer, as words.
    const layers = await c.locator(".layers li").allInnerTexts();
    assert.deepEqual(layers.map((t) => t.split(/\s/)[0].toLowerCase()), ["infra", "middleware", "app"]);
    // Each check with its last latency and state.
    assert.equal(await c.locator("table.checks tbody tr").count(), 3);
    assert.match(await c.locator("table.checks tbody").innerText(), /\d ms/);
    // Weight against normal weight, and the latency chart.
    assert.match(await c.locator(".weight").innerText(), /weight \d+% of traffic/);
    await c.locator('[data-part="latency"] svg path').first().waitFor();
  }
});

test("single orchestrator: the header says it leads, its epoch and the backend; each card shows its one vantage chip", { timeout: 30000 }, async () => {
  const { body: st } = await getJson("/api/v1/status");
  assert.equal(st.leadership.backend, "single");
  assert.equal(st.leadership.leader, true);
  await page.locator('#coord [data-field="coord-epoch"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator("#who").innerText(), `vantage ${st.vantage}`);
  assert.equal(await page.locator('#coord [data-field="coord-leader"]').innerText(), "leader");
  assert.equal(await page.locator('#coord [data-field="coord-epoch"]').innerText(), `epoch ${st.leadership.epoch}`);
  assert.equal(await page.locator('#coord [data-field="coord-backend"]').innerText(), "single orchestrator");
  assert.equal(await page.locator('#coord [data-field="coord-quorum"]').count(), 0, "no quorum with one vantage");
  assert.equal(await page.locator('[data-banner="not-leader"]').count(), 0);
  for (const r of st.regions) {
    assert.deepEqual(r.views.map((v) => v.vantage), [st.vantage], `the single lab publishes one view of ${r.name}`);
    const chips = card(page, r.name).locator(".vchip");
    assert.equal(await chips.count(), 1, `one vantage chip on ${r.name}`);
    assert.equal(await chips.getAttribute("data-vantage"), st.vantage);
    assert.equal(await chips.getAttribute("data-fresh"), "true");
    assert.equal(await chips.innerText(), `${st.vantage} (here)\n${{ up: "✓", degraded: "▲", down: "✕", unknown: "?" }[r.views[0].health]} ${r.views[0].health}`);
    assert.equal(await card(page, r.name).locator('[data-field="quorum-note"]').count(), 0);
  }
  // The leader's actions are enabled.
  assert.equal(await page.locator("#drill-start").isDisabled(), false);
  assert.equal(await card(page, "primary").locator('[data-action="drill"]').isDisabled(), false);
});

test("the live indicator says live", { timeout: 15000 }, async () => {
  await page.waitForFunction(() => document.getElementById("live-text").textContent === "live", null, { timeout: 10000 });
  assert.match(await page.locator("#live").getAttribute("class"), /\blive\b/);
});

test("the lag block of a region shows only when the status carries lag", { timeout: 15000 }, async () => {
  const { body } = await getJson("/api/v1/status");
  for (const r of body.regions) {
    const visible = await card(page, r.name).locator('[data-part="lag"]').isVisible();
    assert.equal(visible, Boolean(r.lag), `lag block of ${r.name}`);
  }
});

test("normal state: NORMAL banner and the configured split (screenshot)", { timeout: 60000 }, async () => {
  await waitForStatus((s) => !s.failed_over && s.plan && s.plan.verified_at, 30000, "the normal split");
  await page.locator('[data-banner="ok"]').waitFor({ timeout: 10000 });
  assert.equal(await splitWeight(page, "primary"), 80);
  assert.equal(await splitWeight(page, "standby"), 20);
  await page.locator("#events li").first().waitFor({ timeout: 10000 });
  const file = await screenshot(page, "normal");
  // The README picture: the top of the page at laptop size, kept small. It lands in artifacts/;
  // FO_UPDATE_DOCS=1 also refreshes the committed docs/dashboard.png.
  const doc = path.join(ARTIFACTS, "dashboard-readme.png");
  await page.screenshot({ path: doc, fullPage: false, animations: "disabled" });
  assert.ok(fs.statSync(doc).size < 300 * 1024, `the README screenshot is ${fs.statSync(doc).size} bytes`);
  if (process.env.FO_UPDATE_DOCS === "1") fs.copyFileSync(doc, path.join(ROOT, "docs", "dashboard.png"));
  assert.ok(fs.statSync(file).size > 0);
});

test("breaking the primary turns its card down and moves the split to the standby, without a reload", { timeout: 60000 }, async () => {
  const loadedAt = await page.evaluate(() => window.__loadedAt);
  const t0 = Date.now();
  await control("break");
  await page.waitForFunction(() => /DOWN/.test(document.querySelector('.card[data-region="primary"] [data-field="health"]').textContent), null, { timeout: 15000 });
  await page.waitForFunction(() => {
    const w = (n) => Number((document.querySelector(`#split .seg[data-region="${n}"]`) || { dataset: { weight: 0 } }).dataset.weight);
    return w("standby") > w("primary") && w("primary") === 0;
  }, null, { timeout: Math.max(1000, 15000 - (Date.now() - t0)) });
  assert.equal(await splitWeight(page, "standby"), 100);
  assert.equal(await page.evaluate(() => window.__loadedAt), loadedAt, "the page reloaded");
  // The card says why, in words.
  assert.match(await card(page, "primary").locator("table.checks").innerText(), /status 503|failed/);
  assert.match(await card(page, "primary").locator('.layers').innerText(), /down/i);
  // The local vantage's chip says the same, with the failing checks in its title.
  const own = card(page, "primary").locator(".vchip");
  await page.waitForFunction(() => document.querySelector('.card[data-region="primary"] .vchip').dataset.health === "down", null, { timeout: 5000 });
  assert.match(await own.innerText(), /down/);
  assert.match(await own.getAttribute("title"), /status 503|refused|failed/);
  await page.locator('[data-banner="failed-over"]').waitFor({ timeout: 5000 });
  assert.match(await page.locator('[data-banner="failed-over"]').innerText(), /FAILED OVER/);
  assert.match(await page.locator("#plan").innerText(), /failover/);
  assert.match(await page.title(), /FAILED OVER/);
});

test("the events timeline shows the failover plan, newest first", { timeout: 30000 }, async () => {
  await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-kind="plan"]')].some((li) => /failover/.test(li.textContent)), null, { timeout: 15000 });
  const times = await page.locator("#events li time").evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute("datetime"))));
  for (let i = 1; i < times.length; i += 1) assert.ok(times[i - 1] >= times[i], "events are newest first");
  await screenshot(page, "failed-over");
});

test("at phone width (390 px) the page fits without sideways scrolling (screenshot)", { timeout: 30000 }, async () => {
  const phone = await newPage("phone", { width: 390, height: 844 });
  await phone.goto(`${FO_URL}/`);
  await phone.locator(".card[data-region]").nth(2).waitFor({ timeout: 15000 });
  await phone.waitForFunction(() => document.getElementById("live-text").textContent === "live");
  await phone.locator("#events li").first().waitFor({ timeout: 10000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await screenshot(phone, "phone");
  await phone.close();
});

test("restoring the primary brings it back up and the split back to normal", { timeout: 120000 }, async () => {
  await control("restore");
  await page.waitForFunction(() => /UP/.test(document.querySelector('.card[data-region="primary"] [data-field="health"]').textContent), null, { timeout: 30000 });
  // Failback waits for the policy's hold time before traffic returns.
  await page.waitForFunction(() => {
    const seg = document.querySelector('#split .seg[data-region="primary"]');
    return seg && Number(seg.dataset.weight) === 80;
  }, null, { timeout: 60000 });
  await page.locator('[data-banner="ok"]').waitFor({ timeout: 10000 });
  await screenshot(page, "restored");
});

test("the events timeline filters by kind and region and loads older pages", { timeout: 30000 }, async () => {
  // Newer events arrive through the debounced refresh; give it a moment to settle.
  await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-kind="plan"]')].some((li) => /failback/.test(li.textContent)), null, { timeout: 15000 });
  await page.selectOption("#f-kind", "plan");
  await page.waitForFunction(() => {
    const lis = [...document.querySelectorAll("#events li")];
    return lis.length > 0 && lis.every((li) => li.dataset.kind === "plan");
  }, null, { timeout: 10000 });
  await page.selectOption("#f-kind", "transition");
  await page.selectOption("#f-region", "standby");
  await page.waitForFunction(() => {
    const lis = [...document.querySelectorAll("#events li")];
    return lis.length > 0 && lis.every((li) => li.dataset.kind === "transition" && /^standby\b/.test(li.querySelector(".ev-msg").textContent));
  }, null, { timeout: 10000 });
  await page.selectOption("#f-region", "");
  await page.selectOption("#f-kind", "");
  // This page reads 10 events at a time (?events_page=10); the lab has more by now.
  await page.waitForFunction(() => document.querySelectorAll("#events li").length === 10, null, { timeout: 10000 });
  await page.locator("#events-more").waitFor({ state: "visible", timeout: 5000 });
  await page.locator("#events-more").click();
  await page.waitForFunction(() => document.querySelectorAll("#events li").length > 10, null, { timeout: 10000 });
  const times = await page.locator("#events li time").evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute("datetime"))));
  for (let i = 1; i < times.length; i += 1) assert.ok(times[i - 1] >= times[i], "older pages append in order");
});

test("maintenance: from the keyboard, drain the standby (its share moves), keep the token, undrain", { timeout: 90000 }, async () => {
  const tok = OPERATOR_TOKEN;
  await page.evaluate(() => sessionStorage.removeItem("failover-orchestrator.token"));
  const btn = card(page, "standby").locator('[data-action="maintenance"]');
  await btn.focus();
  await page.keyboard.press("Enter");
  const dlg = page.locator("#action-dialog");
  await dlg.waitFor({ state: "visible" });
  assert.match(await page.locator("#dlg-title").innerText(), /Drain standby/);
  assert.match(await page.locator("#dlg-body .preview").innerText(), /after/); // the plan it will apply
  assert.ok(await page.locator("#dlg-token").isVisible(), "asks for the operator token");
  await page.locator("#dlg-token").fill(tok);
  await page.locator("#dlg-reason").fill("e2e: drain the standby");
  await page.keyboard.press("Enter"); // submits the form
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await dlg.waitFor({ state: "hidden" });
  await waitForStatus((s) => s.regions.map((r) => r.weight).join() === "100,0,0", 30000, "standby drained");
  // The page itself shows the drained state (not just the server).
  await card(page, "standby").locator("p.maint").waitFor({ timeout: 15000 });
  assert.match(await card(page, "standby").locator("p.maint").innerText(), /In maintenance \(drained\): e2e: drain the standby/);
  assert.equal(await btn.innerText(), "End maintenance…");
  // The token is kept for the tab: the next dialog does not ask again, and the header names it.
  assert.equal(await page.evaluate(() => sessionStorage.getItem("failover-orchestrator.token")), tok);
  await page.waitForFunction(() => document.getElementById("session-who").textContent === "signed in as lab-operator (operator)", null, { timeout: 5000 });
  assert.equal(await page.locator("#signout").isVisible(), true);
  assert.equal(await page.locator("#signin-open").isVisible(), false);
  await btn.click();
  await dlg.waitFor({ state: "visible" });
  assert.equal(await page.locator("#dlg-token-row").isVisible(), false);
  assert.match(await page.locator("#dlg-title").innerText(), /End maintenance of standby/);
  await page.locator("#dlg-reason").fill("e2e: undrain");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await waitForStatus((s) => s.regions.map((r) => r.weight).join() === "80,20,0", 60000, "standby back after undrain");
});

test("actions (mocked answers): a 4xx message is shown as text, a follower's 409 names and links the leader, and a 401 asks for the token again", { timeout: 30000 }, async () => {
  const payload = '<img src=x onerror="window.__xss=1">region is the last one up';
  await page.route("**/api/v1/regions/*/maintenance", (route) =>
    route.fulfill({ status: 409, contentType: "application/json", body: JSON.stringify({ error: payload }) }));
  await page.evaluate(() => sessionStorage.setItem("failover-orchestrator.token", "e2e-token"));
  await card(page, "standby").locator('[data-action="maintenance"]').click();
  await page.locator("#dlg-reason").fill("e2e");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-error").waitFor({ state: "visible", timeout: 10000 });
  const text = await page.locator("#dlg-error").innerText();
  assert.match(text, /Refused \(409\)/);
  assert.ok(text.includes(payload), "the server's message is shown verbatim, as text");
  assert.equal(await page.locator("#dlg-error img").count(), 0);
  await page.unroute("**/api/v1/regions/*/maintenance");
  // A follower's refusal (api/error.rs NotLeader): the leader is named and linked.
  const notLeader = { error: "refused: this orchestrator is not the leader; send the request to the leader, dr, at http://127.0.0.1:9", reasons: [], leader: "dr", leader_api: "http://127.0.0.1:9" };
  await page.route("**/api/v1/regions/*/maintenance", (route) =>
    route.fulfill({ status: 409, contentType: "application/json", body: JSON.stringify(notLeader) }));
  await page.locator("#dlg-confirm").click();
  await page.waitForFunction(() => /not the leader\./.test(document.getElementById("dlg-error").textContent), null, { timeout: 10000 });
  assert.match(await page.locator("#dlg-error").innerText(), /^Refused \(409\): not the leader\. refused: .*the leader, dr, at http:\/\/127\.0\.0\.1:9 open dr's dashboard\.$/);
  assert.equal(await page.locator("#dlg-error a[data-leader-link]").getAttribute("href"), "http://127.0.0.1:9/");
  await page.unroute("**/api/v1/regions/*/maintenance");
  // A leader URL that is no http(s) URL is never made a link.
  await page.route("**/api/v1/regions/*/maintenance", (route) =>
    route.fulfill({ status: 409, contentType: "application/json", body: JSON.stringify(Object.assign({}, notLeader, { leader_api: "javascript:window.__xss=1" })) }));
  await page.locator("#dlg-confirm").click();
  await page.waitForFunction(() => /not the leader\./.test(document.getElementById("dlg-error").textContent) && !document.querySelector("#dlg-error a"), null, { timeout: 10000 });
  await page.unroute("**/api/v1/regions/*/maintenance");
  await page.route("**/api/v1/regions/*/maintenance", (route) =>
    route.fulfill({ status: 401, contentType: "application/json", body: JSON.stringify({ error: "unknown token" }) }));
  await page.locator("#dlg-confirm").click();
  await page.waitForFunction(() => /Refused \(401\)/.test(document.getElementById("dlg-error").textContent));
  assert.ok(await page.locator("#dlg-token").isVisible(), "asks for the token again");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("failover-orchestrator.token")), null);
  await page.unroute("**/api/v1/regions/*/maintenance");
  await page.keyboard.press("Escape");
  assert.equal(await page.evaluate(() => window.__xss), undefined);
});

test("drills: a dry-run drill from the page shows in the timeline; a live drill shows a banner and can be aborted", { timeout: 120000 }, async () => {
  await assertDrillsApi();
  const tok = OPERATOR_TOKEN;
  await page.evaluate(() => sessionStorage.removeItem("failover-orchestrator.token"));
  // Dry run: every step planned and recorded, no provider touched; it finishes at once.
  await page.locator("#drill-start").click();
  await page.selectOption("#dr-region", "primary");
  await page.locator("#dr-steps").fill("50, 100");
  await page.locator("#dr-hold").fill("30");
  await page.locator('input[name="dr-mode"][value="dry"]').check();
  assert.match(await page.locator("#dlg-body .preview").innerText(), /step 50%[\s\S]*step 100%[\s\S]*rollback/);
  await page.locator("#dlg-token").fill(tok);
  await page.locator("#dlg-reason").fill("e2e dry-run drill");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => /drill\.start/.test(document.getElementById("events").textContent), null, { timeout: 15000 });
  const { body: st } = await getJson("/api/v1/status");
  assert.deepEqual(st.regions.map((r) => r.weight), [80, 20, 0], "a dry run moves no traffic");
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-drill-timeline.png"), fullPage: false });
  // Live drill: the banner shows while it holds; abort rolls back.
  await page.locator("#drill-start").click();
  await page.selectOption("#dr-region", "primary");
  await page.locator("#dr-steps").fill("50");
  await page.locator("#dr-hold").fill("60");
  await page.locator('input[name="dr-mode"][value="live"]').check();
  await page.locator("#dlg-reason").fill("e2e live drill");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await page.locator('[data-banner="drill"]').waitFor({ timeout: 15000 });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-drill.png"), fullPage: false });
  await page.locator('[data-banner="drill"] [data-abort-drill]').click();
  await page.locator("#dlg-reason").fill("e2e: abort");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await page.locator('[data-banner="drill"]').waitFor({ state: "detached", timeout: 60000 });
  await waitForStatus((s) => s.regions.map((r) => r.weight).join() === "80,20,0", 30000, "rolled back to 80/20");
  // Synthetic failure: the (healthy) primary's probes are reported failed, the automation fails it
  // over for real with the banners saying so, and the drill rolls back by itself.
  await waitForStatus((s) => !s.drill && s.regions.every((r) => r.health === "up"), 30000, "every region up before the synthetic drill");
  await page.locator("#drill-start").click();
  await page.selectOption("#dr-region", "primary");
  await page.locator("#dr-hold").fill("3");
  await page.locator('input[name="dr-mode"][value="synthetic"]').check();
  assert.match(await page.locator("#dlg-body .preview").innerText(), /automatic failover[\s\S]*rollback/);
  assert.equal(await page.locator("#dlg-confirm").innerText(), "Start SYNTHETIC-FAILURE drill");
  await page.locator("#dlg-reason").fill("e2e synthetic-failure drill");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await page.locator('[data-banner="drill"]', { hasText: "SYNTHETIC DRILL" }).waitFor({ timeout: 15000 });
  await waitForStatus((s) => s.regions.map((r) => r.weight).join() === "0,100,0" && s.plan && s.plan.verified_at, 30000, "the automation failed the primary over");
  await page.locator('[data-banner="failed-over"]', { hasText: "(SYNTHETIC DRILL)" }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-synthetic-drill.png"), fullPage: false });
  await page.locator('[data-banner="drill"]').waitFor({ state: "detached", timeout: 60000 });
  await waitForStatus((s) => s.regions.map((r) => r.weight).join() === "80,20,0", 30000, "the synthetic drill rolled back to 80/20");
  const { body: drills } = await getJson("/api/v1/drills");
  const last = drills.drills[0];
  assert.equal(last.spec.synthetic, true, JSON.stringify(last));
  assert.equal(last.state, "completed", JSON.stringify(last));
  assert.ok(last.report.synthetic.rto_ms > 0, JSON.stringify(last.report));
});

test("drills: a refused token shows the server's 401 message in the dialog", { timeout: 30000 }, async () => {
  await assertDrillsApi();
  await page.evaluate(() => sessionStorage.removeItem("failover-orchestrator.token"));
  await page.locator("#drill-start").click();
  await page.locator("#dlg-token").fill("not-a-valid-token");
  await page.locator("#dlg-reason").fill("e2e: refused token");
  await page.locator("#dlg-confirm").click();
  await page.waitForFunction(() => /Refused \((401|403)\)/.test(document.getElementById("dlg-error").textContent), null, { timeout: 10000 });
  await page.keyboard.press("Escape");
});

test("viewer token: a viewer sees everything but cannot start a drill", { timeout: 60000 }, async () => {
  await assertDrillsApi();
  const viewer = VIEWER_TOKEN;
  const before = await getJson("/api/v1/drills");
  await page.evaluate(() => sessionStorage.removeItem("failover-orchestrator.token"));
  await page.locator("#drill-start").click();
  await page.selectOption("#dr-region", "primary");
  await page.locator('input[name="dr-mode"][value="dry"]').check();
  await page.locator("#dlg-token").fill(viewer);
  await page.locator("#dlg-reason").fill("e2e: viewer tries a drill");
  await page.locator("#dlg-confirm").click();
  await page.waitForFunction(() => /Refused \(403\)/.test(document.getElementById("dlg-error").textContent), null, { timeout: 10000 });
  await page.keyboard.press("Escape");
  assert.equal(await page.locator('[data-banner="drill"]').count(), 0, "no drill started");
  const after = await getJson("/api/v1/drills");
  assert.deepEqual(JSON.stringify(after.body).length, JSON.stringify(before.body).length, "the drill list is unchanged");
  await page.evaluate(() => sessionStorage.removeItem("failover-orchestrator.token"));
});

test("synthetic status (fixture): lag, drill, follower, coordination, vantage views, alarms and a refused provider render; text is escaped; the stream reconnects", { timeout: 60000 }, async () => {
  const { body: real } = await getJson("/api/v1/status");
  const st = structuredClone(real);
  // The shape of replication::LagSample, as status.rs publishes it.
  st.regions[1].lag = { region: "standby", at: real.generated_at, bytes: 1572864, seconds: 2.5, state: "catching_up", bytes_source: "primary", seconds_source: "heartbeat", detail: "sync" };
  st.regions[2].lag = { region: "dr", at: real.generated_at, bytes: 52428800, seconds: 95, state: "stopped", bytes_source: "standby", seconds_source: "standby", detail: "no WAL receiver: the primary is unreachable from dr" };
  st.drill = { id: "drill-e2e", state: "holding", evacuate: "primary", step: 1, steps: [50, 100], dry_run: true };
  // A follower of dr on etcd that lost its session, as src/coord/mod.rs shapes it.
  st.leadership = { leader: false, epoch: 4242, holder: "dr", leader_api: "http://127.0.0.1:9", backend: "etcd" };
  st.coordination = {
    backend: { backend: "etcd", connected: false, since: real.generated_at, last_error: "connect: deadline exceeded (http://fo:s3cret@10.0.0.1:2379)", endpoints: ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"], requests: 12 },
    quorum: 2, vantages: ["primary", "standby", "dr"],
  };
  // Three vantages' views of the primary: standby sees it down, dr's view is stale.
  const view = (vantage, health, fresh, age, reasons) => ({ vantage, health, since: real.generated_at, fresh, age_ms: age, reasons });
  st.regions[0].views = [view(st.vantage, "up", true, 0, []), view("standby", "down", true, 1400, ["app: connection refused", "infra: connect timeout"]), view("dr", "up", false, 45000, [])];
  st.regions[0].quorum_note = "primary: down from standby only (1 of 3 vantages, quorum 2); up from primary";
  st.alarms = [
    { kind: "lag_high", region: "dr", message: '<script>window.__xss=1</script>dr is 95 s behind', since: real.generated_at },
    { kind: "suspect_path", region: "primary", message: "standby alone has seen primary down for 25 s", since: real.generated_at },
    { kind: "coordination_lost", region: null, message: "no session with the etcd majority", since: real.generated_at },
    { kind: "stale_write_refused", region: null, message: "powerdns refused a write from epoch 7", since: real.generated_at },
  ];
  assert.ok(st.plan && st.plan.providers.length > 0, "the lab's plan has provider results");
  st.plan.providers[0].result = { state: "refused", error: "stale epoch 7: the provider holds epoch 9" };
  const now = Date.now();
  const points = Array.from({ length: 60 }, (_, i) => ({ at: new Date(now - (60 - i) * 15000).toISOString(), bytes: 1000 * i * i, seconds: i / 10 }));
  const p = await newPage("fixture");
  let streams = 0;
  // One snapshot per connection, then the connection ends: the page opens a new one after ~1.5 s.
  await p.route("**/api/v1/stream", (route) => {
    streams += 1;
    route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" }, body: `retry: 1500\nevent: status\ndata: ${JSON.stringify(st)}\n\n` });
  });
  await p.route("**/api/v1/regions/*/lag?*", (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ points }) }));
  // Record every text the live indicator shows: the reconnecting state lasts ~1.5 s here.
  await p.addInitScript(() => {
    window.__liveLog = [];
    document.addEventListener("DOMContentLoaded", () => {
      const el = document.getElementById("live-text");
      new MutationObserver(() => window.__liveLog.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
  });
  await p.goto(`${FO_URL}/`);
  await card(p, "standby").locator('[data-part="lag"]').waitFor({ state: "visible", timeout: 10000 });
  const lag = await card(p, "standby").locator('[data-part="lag"]').innerText();
  assert.match(lag, /1\.5 MiB/);
  assert.match(lag, /2\.50 s/);
  assert.match(lag, /catching up/);
  assert.match(lag, /primary \/ heartbeat/);
  assert.match(await card(p, "dr").locator('[data-part="lag"]').innerText(), /50 MiB[\s\S]*1 min 35 s[\s\S]*stopped[\s\S]*no WAL receiver/);
  assert.equal(await card(p, "primary").locator('[data-part="lag"]').isVisible(), false);
  await card(p, "standby").locator('[data-part="lag-chart"] svg path').first().waitFor({ timeout: 10000 });
  assert.equal(await card(p, "primary").locator('[data-part="lag-chart"]').isVisible(), false);
  await p.locator('[data-banner="drill"]').waitFor();
  assert.match(await p.locator('[data-banner="drill"]').innerText(), /dry run · evacuating primary · holding · step 1 of 2/);
  await p.locator('[data-banner="not-leader"]').waitFor();
  assert.match(await p.locator('[data-banner="not-leader"]').innerText(), /dr leads in epoch 4242/);
  assert.equal(await p.locator('[data-banner="not-leader"] a[data-leader-link]').getAttribute("href"), "http://127.0.0.1:9/");
  assert.ok((await p.locator('[data-banner="alarm"]').first().innerText()).includes("<script>window.__xss=1</script>"));
  // The new alarm kinds have readable titles.
  assert.deepEqual(await p.locator('[data-banner="alarm"] .tag').allInnerTexts(), ["Lag high", "Suspect network path", "Coordination lost", "Stale write refused"]);
  // The header: following dr (with a link to its dashboard), the epoch, etcd lost with its endpoints and last error, the quorum.
  assert.match(await p.locator('#coord [data-field="coord-leader"]').innerText(), /^following dr · open dr's dashboard$/);
  assert.equal(await p.locator('#coord [data-field="coord-leader"] a').getAttribute("href"), "http://127.0.0.1:9/");
  assert.equal(await p.locator('#coord [data-field="coord-epoch"]').innerText(), "epoch 4242");
  const backend = await p.locator('#coord [data-field="coord-backend"]').innerText();
  assert.match(backend, /etcd lost/);
  assert.match(backend, /10\.0\.0\.1:2379, 10\.0\.0\.2:2379, 10\.0\.0\.3:2379/);
  assert.match(backend, /last error: connect: deadline exceeded \(http:\/\/10\.0\.0\.1:2379\)/);
  assert.ok(!(await p.locator("#coord").innerText()).includes("s3cret"), "no secret from an etcd URL reaches the page");
  assert.equal(await p.locator('#coord [data-field="coord-quorum"]').innerText(), "quorum 2 of 3 vantages");
  // The primary's card: one chip per vantage, side by side, in the status's order, and the quorum sentence.
  const chips = card(p, "primary").locator(".vchip");
  assert.deepEqual(await chips.evaluateAll((els) => els.map((e) => [e.dataset.vantage, e.dataset.health, e.dataset.fresh])),
    [[st.vantage, "up", "true"], ["standby", "down", "true"], ["dr", "up", "false"]]);
  assert.equal(await chips.nth(1).innerText(), "standby · 1 s\n✕ down");
  assert.equal(await chips.nth(2).innerText(), "dr · 45 s\n✓ up (stale)");
  assert.equal(await chips.nth(1).locator(".state").getAttribute("class"), "state state-down", "the health's colour");
  assert.match(await chips.nth(1).getAttribute("title"), /^standby sees primary down since [\s\S]*fresh, it votes\napp: connection refused\ninfra: connect timeout$/);
  const [y1, y2] = await chips.evaluateAll((els) => els.slice(0, 2).map((e) => e.getBoundingClientRect().top));
  assert.equal(y1, y2, "the chips stand side by side");
  assert.equal(await card(p, "primary").locator('[data-field="quorum-note"]').innerText(), st.regions[0].quorum_note);
  // A refused provider result has its own chip.
  const refused = p.locator('#plan tr[data-result="refused"]');
  assert.match(await refused.locator(".state-refused").innerText(), /refused/);
  assert.match(await refused.innerText(), /stale epoch 7/);
  // Every operator action is disabled on a follower, with a title naming the leader.
  for (const b of [p.locator("#drill-start"), card(p, "primary").locator('[data-action="drill"]'), card(p, "standby").locator('[data-action="maintenance"]'), p.locator("#drill [data-abort-drill]")]) {
    assert.equal(await b.isDisabled(), true);
    assert.match(await b.getAttribute("title"), /^Only the leader acts: dr leads \(epoch 4242\)/);
  }
  assert.match(await p.locator("#drill").innerText(), /drill-e2e/);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `long lag states widen the page by ${overflow}px`);
  await screenshot(p, "fixture");
  // The connection ends after each snapshot: the indicator must show it, then recover.
  await p.waitForFunction(() => {
    const log = window.__liveLog;
    const i = log.findIndex((t) => t.startsWith("reconnecting"));
    return i >= 0 && log.slice(i + 1).includes("live");
  }, null, { timeout: 10000, polling: 100 });
  assert.ok(streams >= 2, "the page reopened the stream after it ended");
  assert.equal(await p.evaluate(() => window.__xss), undefined);
  await p.close();
});

test("no console errors on any page", () => {
  assert.deepEqual(consoleErrors, []);
});
