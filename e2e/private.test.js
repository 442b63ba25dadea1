// End-to-end test of the dashboard against a lab whose reads need a token
// (`fo-lab --private`: `[auth] public_reads = false`, as a real deployment has it).
// `scripts/e2e.sh` (part 3) starts the lab and sets FO_URL, FO_CONTROL_URL,
// FO_VIEWER_TOKEN and FO_OPERATOR_TOKEN.
//
// Tests run in order on one browser profile: signed out (nothing shown, nothing read,
// no stream); a wrong token; the operator's dry-run drill, then Sign out; the viewer's
// live updates (the primary broken through the lab's control endpoint) with actions
// refused; and, over every request the browser made, no token in any URL, only
// single-use stream tickets. The page is served with a strict Content-Security-Policy
// (no 'unsafe-inline') when the server sends none, so a page that needs inline script
// or style attributes fails here through its console errors.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { singleLab, launchBrowser, watchConsole, screenshot, getJsonAt } = require("./browser.js");

const { url: FO_URL, controlUrl: FO_CONTROL_URL, operatorToken: OPERATOR_TOKEN, viewerToken: VIEWER_TOKEN } = singleLab();
const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";
const TOKEN_KEY = "failover-orchestrator.token";

let browser;
let page;
const consoleErrors = [];
const requests = []; // every URL the browser asked for
const apiAnswers = []; // { path, status, text } of every API answer but the stream's

// Answers the page gets on purpose: the 401s of whoami while signed out (and for the wrong
// token), the stream connection this test cuts to make the page reconnect, and the 403 of
// the drill a viewer tries.
const EXPECTED_FAILURES = [/\/api\/v1\/whoami$/, /\/api\/v1\/stream\?ticket=/, /\/api\/v1\/drills$/];

const card = (p, name) => p.locator(`.card[data-region="${name}"]`);
const pathOf = (url) => new URL(url).pathname;
const streamRequests = () => requests.filter((u) => pathOf(u) === "/api/v1/stream");
const authed = (tok) => ({ headers: { Authorization: `Bearer ${tok}` } });

async function control(action, region = "primary") {
  const r = await fetch(`${FO_CONTROL_URL}/regions/${region}/app/${action}`, { method: "POST" });
  assert.equal(r.status, 200, `control ${region}/${action}: HTTP ${r.status} ${await r.text()}`);
}

async function statusAs(tok) {
  const r = await fetch(`${FO_URL}/api/v1/status`, authed(tok));
  assert.equal(r.status, 200);
  return r.json();
}

/** What the page shows of the orchestrator's data: cards, split segments, events, plan, banners. */
const shownData = (p) => p.evaluate(() => ({
  board: !document.getElementById("board").hidden,
  cards: document.querySelectorAll(".card[data-region]").length,
  split: document.querySelectorAll("#split .seg").length,
  events: document.querySelectorAll("#events li").length,
  banners: document.getElementById("banners").childElementCount,
  coord: document.getElementById("coord").childElementCount,
  who: document.getElementById("who").textContent,
}));

async function signIn(p, tok) {
  await p.locator("#signin-token").fill(tok);
  await p.locator("#signin-submit").click();
}

before(async () => {
  browser = await launchBrowser();
  const ctx = browser.context;
  ctx.on("request", (r) => requests.push(r.url()));
  ctx.on("response", async (r) => {
    const url = r.url();
    if (!url.startsWith(`${FO_URL}/api/`) || pathOf(url) === "/api/v1/stream") return;
    apiAnswers.push({ path: pathOf(url), status: r.status(), text: await r.text().catch(() => "") });
  });
  // The page under a strict policy, unless the server already sends one.
  await ctx.route((url) => url.origin === FO_URL && url.pathname === "/", async (route) => {
    const resp = await route.fetch();
    const headers = resp.headers();
    if (!headers["content-security-policy"]) headers["content-security-policy"] = STRICT_CSP;
    await route.fulfill({ response: resp, headers });
  });
  page = await ctx.newPage();
  watchConsole(page, "private", consoleErrors, EXPECTED_FAILURES);
  await page.addInitScript(() => { window.__loadedAt = window.__loadedAt || Date.now(); });
});

after(async () => {
  if (browser) await browser.close();
});

test("signed out: only the sign-in step shows; no status, events or lag reaches the page and no stream opens", { timeout: 30000 }, async () => {
  const doc = await page.goto(`${FO_URL}/`);
  assert.match(doc.headers()["content-security-policy"] || "", /script-src 'self'/, "the page is served under a CSP");
  await page.locator("#signin").waitFor({ state: "visible", timeout: 10000 });
  await page.waitForLoadState("networkidle");
  assert.deepEqual(await shownData(page), { board: false, cards: 0, split: 0, events: 0, banners: 0, coord: 0, who: "" });
  assert.equal(await page.locator("#live-text").innerText(), "signed out");
  assert.equal(await page.locator("#signout").isVisible(), false);
  // The one read was whoami, refused; nothing else of the API was asked for.
  const api = requests.filter((u) => u.startsWith(`${FO_URL}/api/`)).map(pathOf);
  assert.deepEqual(api, ["/api/v1/whoami"]);
  assert.deepEqual(apiAnswers.map((a) => [a.path, a.status]), [["/api/v1/whoami", 401]]);
  assert.deepEqual(Object.keys(JSON.parse(apiAnswers[0].text)), ["error"]);
  // The server, asked directly, gives nothing without a token either, and no long-lived token in a URL opens the stream.
  for (const p of ["/api/v1/status", "/api/v1/events", "/api/v1/regions/standby/lag", "/api/v1/stream", `/api/v1/stream?access_token=${VIEWER_TOKEN}`]) {
    const { status, body } = await getJsonAt(`${FO_URL}${p}`);
    assert.equal(status, 401, p);
    assert.deepEqual(Object.keys(body), ["error"], p);
  }
  await screenshot(page, "private-signed-out");
});

test("a wrong token is refused on the sign-in step and still nothing is shown", { timeout: 20000 }, async () => {
  await signIn(page, "not-a-valid-token");
  await page.waitForFunction(() => /not accepted \(HTTP 401/.test(document.getElementById("signin-error").textContent), null, { timeout: 10000 });
  assert.equal((await shownData(page)).cards, 0);
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, "a refused token is not kept");
  assert.equal(streamRequests().length, 0, "no stream without a session");
});

test("operator: signed in, a dry-run drill from the page shows in the timeline; Sign out clears the page", { timeout: 60000 }, async () => {
  await signIn(page, OPERATOR_TOKEN);
  await card(page, "primary").waitFor({ timeout: 15000 });
  assert.equal(await page.locator("#signin").isVisible(), false);
  assert.equal(await page.locator("#session-who").innerText(), "signed in as lab-operator (operator)");
  await page.waitForFunction(() => document.getElementById("live-text").textContent === "live", null, { timeout: 10000 });
  await page.locator("#events li").first().waitFor({ timeout: 10000 });
  // The drill: the dialog does not ask for a token (the session's serves), and it is recorded.
  assert.equal(await page.locator("#drill-start").isDisabled(), false);
  await page.locator("#drill-start").click();
  assert.equal(await page.locator("#dlg-token-row").isVisible(), false, "signed in: no token asked");
  await page.selectOption("#dr-region", "primary");
  await page.locator("#dr-steps").fill("50, 100");
  await page.locator("#dr-hold").fill("1");
  await page.locator('input[name="dr-mode"][value="dry"]').check();
  await page.locator("#dlg-reason").fill("e2e private: dry-run drill");
  await page.locator("#dlg-confirm").click();
  await page.locator("#dlg-ok").waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => [...document.querySelectorAll("#events li")].some((li) => /drill\.start/.test(li.textContent)), null, { timeout: 15000 });
  assert.deepEqual((await statusAs(OPERATOR_TOKEN)).regions.map((r) => r.weight), [80, 20, 0], "a dry run moves no traffic");
  await screenshot(page, "private-operator");
  // Sign out: the token is forgotten and the page starts over, showing nothing.
  const streamsBefore = streamRequests().length;
  await page.locator("#signout").click();
  await page.locator("#signin").waitFor({ state: "visible", timeout: 10000 });
  await page.waitForLoadState("networkidle");
  assert.deepEqual(await shownData(page), { board: false, cards: 0, split: 0, events: 0, banners: 0, coord: 0, who: "" });
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
  assert.equal(streamRequests().length, streamsBefore, "no stream after signing out");
});

test("viewer: live updates arrive without a reload, each connection with a fresh ticket; actions are disabled and refused", { timeout: 60000 }, async () => {
  // Cut the first stream connection of this session: the page must reconnect with a new ticket.
  let cut = 0;
  await page.route((url) => url.pathname === "/api/v1/stream", (route) => (cut++ === 0 ? route.abort("connectionreset") : route.continue()));
  const firstStream = streamRequests().length;
  await signIn(page, VIEWER_TOKEN);
  await card(page, "primary").waitFor({ timeout: 15000 });
  assert.equal(await page.locator("#session-who").innerText(), "signed in as lab-viewer (viewer)");
  await page.waitForFunction(() => document.getElementById("live-text").textContent === "live", null, { timeout: 15000 });
  const urls = streamRequests().slice(firstStream);
  assert.ok(urls.length >= 2, `the page reconnected after the cut: ${urls.length} stream requests`);
  const tickets = urls.map((u) => new URL(u).searchParams.get("ticket"));
  assert.ok(tickets.every((t) => /^[0-9a-f]{64}$/.test(t)), "every connection carries a ticket");
  assert.equal(new Set(tickets).size, tickets.length, "a new ticket for every connection");
  await page.unroute((url) => url.pathname === "/api/v1/stream");
  // Everything is shown, but no action can be started: disabled, saying why, and refused by the server.
  for (const b of [page.locator("#drill-start"), card(page, "primary").locator('[data-action="drill"]'), card(page, "standby").locator('[data-action="maintenance"]')]) {
    assert.equal(await b.isDisabled(), true);
    assert.match(await b.getAttribute("title"), /^Signed in as lab-viewer \(viewer\): actions need an operator or admin token/);
  }
  const refused = await page.evaluate(async (k) => {
    const r = await fetch("/api/v1/drills", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionStorage.getItem(k)}` },
      body: JSON.stringify({ evacuate: "primary", dry_run: true, reason: "e2e: a viewer tries" }),
    });
    return { status: r.status, body: await r.json() };
  }, TOKEN_KEY);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /lab-viewer.*viewer.*needs operator/);
  // A live update: break the primary; its card turns down in this page, without a reload.
  const loadedAt = await page.evaluate(() => window.__loadedAt);
  await control("break");
  try {
    await page.waitForFunction(() => /DOWN/.test(document.querySelector('.card[data-region="primary"] [data-field="health"]').textContent), null, { timeout: 20000 });
    await page.waitForFunction(() => Number((document.querySelector('#split .seg[data-region="standby"]') || { dataset: {} }).dataset.weight) === 100, null, { timeout: 20000 });
    assert.equal(await page.evaluate(() => window.__loadedAt), loadedAt, "the page reloaded");
    await screenshot(page, "private-viewer-failed-over");
  } finally {
    await control("restore");
  }
});

test("no token in any URL: only single-use stream tickets, each refused once used; the token is in sessionStorage only", { timeout: 20000 }, async () => {
  assert.ok(requests.length > 10, `the browser made ${requests.length} requests`);
  for (const u of requests) {
    for (const tok of [VIEWER_TOKEN, OPERATOR_TOKEN]) assert.ok(!u.includes(tok), `a token in ${u}`);
    const q = new URL(u).searchParams;
    assert.ok(![...q.keys()].some((k) => /token|auth|key|secret/i.test(k)), `a credential-like parameter in ${u}`);
    if (q.has("ticket")) assert.equal(pathOf(u), "/api/v1/stream", `a ticket outside the stream: ${u}`);
  }
  const tickets = streamRequests().map((u) => new URL(u).searchParams.get("ticket"));
  assert.equal(new Set(tickets).size, tickets.length, "no ticket was used twice");
  // A ticket the page used opens nothing again.
  const used = await fetch(`${FO_URL}/api/v1/stream?ticket=${tickets[tickets.length - 1]}`);
  assert.equal(used.status, 401);
  assert.match((await used.json()).error, /unknown or was already used/);
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), []);
  assert.deepEqual(await browser.context.cookies(), []);
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), VIEWER_TOKEN);
});

test("no console errors (a strict Content-Security-Policy included)", () => {
  assert.deepEqual(consoleErrors, []);
});
