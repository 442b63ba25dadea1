// The confirmation dialog shared by every operator action: it shows the form and
// the plan the action is expected to apply, asks for a reason (and, when the tab
// holds no token yet, the operator token: kept as the tab's token), sends the
// action, and says what the orchestrator answered.

import { newKey, postAction, routeMissing, token } from "./api.js";
import { dashboardLink } from "./coordination.js";
import { $, fill, h } from "./dom.js";
import { refreshEvents } from "./events.js";
import { adoptToken, tokenRefused } from "./session.js";

let dialogSpec = null;

/**
 * Opens the confirmation dialog. `spec` = { title, confirm, form: nodes,
 * preview(): nodes, request(): { url, body } | { error } } — preview() is
 * re-rendered on every input so the plan preview follows the form; the form
 * holds an element with `data-preview` where it goes.
 */
export function openDialog(spec) {
  dialogSpec = Object.assign({ key: newKey() }, spec);
  const dlg = $("action-dialog");
  $("dlg-title").textContent = spec.title;
  fill($("dlg-body"), spec.form || "");
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
  if (box && dialogSpec) fill(box, dialogSpec.preview());
}

/** Shows why the action did not go through (text and elements, never markup). */
function dialogError(...children) {
  const el = $("dlg-error");
  fill(el, ...children);
  el.hidden = false;
}

/** "Refused (409): <the server's message>" and the like: a bold verdict, then the detail. */
const verdict = (title, ...detail) => [h("strong", null, title), ...detail];

/** Shows the orchestrator's answer to an action: accepted, or why not. */
function showAnswer(req, resp, body) {
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
    dialogError(verdict("Not available in this version.", " This orchestrator has no ", h("code", null, req.url.replace(/\?.*$/, "")),
      ` API yet (HTTP ${resp.status}).`));
  } else if (resp.status === 401) {
    // The token was refused: forget it and ask again (where reads need a token, the session ends).
    tokenRefused(`HTTP 401: ${message || "the token was not accepted"}`);
    $("dlg-token-row").hidden = false;
    $("dlg-token").required = true;
    dialogError(verdict("Refused (401):", ` ${message || "the operator token was not accepted"}. Enter a valid token.`));
    $("dlg-token").focus();
  } else if (resp.status === 409 && body && Object.hasOwn(body, "leader_api")) {
    // A follower's refusal (api/error.rs NotLeader): its message names the leader; link to it.
    const link = dashboardLink(body.leader_api, body.leader);
    dialogError(verdict("Refused (409): not the leader.", ` ${message}`, link ? [" ", link, "."] : ""));
  } else if (resp.status < 500) {
    dialogError(verdict(`Refused (${resp.status}):`, ` ${message || resp.statusText || "no reason given"}`));
  } else {
    const rid = resp.headers.get("x-request-id");
    dialogError(verdict(`Server error (${resp.status}):`, ` ${message || "no detail"}`, rid ? [" ", h("span", { class: "mono" }, `request ${rid}`)] : ""));
  }
}

async function confirmDialog(ev) {
  ev.preventDefault();
  if (!dialogSpec) return;
  const form = $("dlg-form");
  if (!form.reportValidity()) return;
  const req = dialogSpec.request();
  if (req.error) { dialogError(req.error); return; }
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
    resp = await postAction(req.url, Object.assign({}, req.body, { reason }), tok, dialogSpec.key);
    body = await resp.json().catch(() => null);
  } catch (e) {
    $("dlg-confirm").disabled = false;
    dialogError(`Could not reach the orchestrator: ${e.message || e}`);
    return;
  }
  $("dlg-confirm").disabled = false;
  showAnswer(req, resp, body);
  // A typed token the server did not refuse is the tab's now: the header and the role follow it.
  if (typed && resp.status !== 401) adoptToken(typed);
}

/** Wires the dialog: confirm, live preview, cancel. */
export function initDialogs() {
  $("dlg-form").addEventListener("submit", confirmDialog);
  $("dlg-form").addEventListener("input", updatePreview);
  $("dlg-form").addEventListener("change", updatePreview);
  $("dlg-cancel").addEventListener("click", () => $("action-dialog").close());
  $("action-dialog").addEventListener("close", () => { dialogSpec = null; });
}
