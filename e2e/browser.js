// What the browser tests share: Debian's Chromium driven by playwright-core on a
// fresh profile, a console watcher that collects errors, screenshots into
// artifacts/, and polling helpers.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..");
const ARTIFACTS = path.join(ROOT, "artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Starts Chromium headless on a fresh user-data-dir; `close()` stops it and removes the profile. */
async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fo-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
    colorScheme: "light",
    reducedMotion: "reduce",
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Collects the console errors and page errors of `p` into `sink`, except a failed load of a
 * URL matching one of `expected` (requests the page makes knowing they may fail).
 */
function watchConsole(p, label, sink, expected = []) {
  p.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const url = (msg.location() && msg.location().url) || "";
    if (/Failed to load resource/.test(msg.text()) && expected.some((re) => re.test(url))) return;
    sink.push(`[${label}] ${msg.text()} ${url}`);
  });
  p.on("pageerror", (err) => sink.push(`[${label}] page error: ${err.message}`));
}

/** A full-page screenshot in artifacts/dashboard-<name>.png; returns its path. */
async function screenshot(p, name, opts = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `dashboard-${name}.png`);
  await p.screenshot(Object.assign({ path: file, fullPage: true, animations: "disabled" }, opts));
  return file;
}

/** GET `url` as JSON: `{ status, body }` (body null when it is no JSON). */
async function getJsonAt(url) {
  const r = await fetch(url);
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Polls `probe()` every 250 ms until it returns a truthy value; the error quotes `describe()`. */
async function waitFor(probe, timeoutMs, what, describe = async () => "") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describe()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The single-orchestrator lab scripts/e2e.sh started: `{ url, controlUrl, operatorToken,
 * viewerToken }` from FO_URL, FO_CONTROL_URL, FO_OPERATOR_TOKEN and FO_VIEWER_TOKEN; throws
 * when one is missing, so a run without them fails instead of skipping.
 */
function singleLab() {
  const lab = {
    url: (process.env.FO_URL || "").replace(/\/$/, ""),
    controlUrl: (process.env.FO_CONTROL_URL || "").replace(/\/$/, ""),
    operatorToken: process.env.FO_OPERATOR_TOKEN || "",
    viewerToken: process.env.FO_VIEWER_TOKEN || "",
  };
  if (!lab.url || !lab.controlUrl || !lab.operatorToken || !lab.viewerToken) {
    throw new Error("set FO_URL, FO_CONTROL_URL, FO_OPERATOR_TOKEN and FO_VIEWER_TOKEN (scripts/e2e.sh does)");
  }
  return lab;
}

module.exports = { ROOT, ARTIFACTS, singleLab, launchBrowser, watchConsole, screenshot, getJsonAt, waitFor };
