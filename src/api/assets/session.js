// Sign-in: who this tab acts as, and whether the page may show anything yet.
//
// The page first asks `GET /api/v1/whoami` with the tab's token, or with none:
//   - a token the server knows: signed in (name and role in the header, "Sign out");
//   - no token, and reads are public (`[auth] public_reads = true`, or no `[auth]`):
//     the page shows everything at once; "Sign in" is offered, and an action dialog
//     still asks for an operator token;
//   - no token, and reads need one (401): the sign-in step, and nothing else: no
//     status, events or lag is fetched and no stream is opened until a token is accepted.
// The token lives in sessionStorage only (api.js) and serves reads and actions alike.
// Signing out, or the server refusing the token later, clears it and reloads the page,
// so nothing read with it stays in the page or its memory.

import { apiFetch, token, whenTokenRefused } from "./api.js";
import { lockActions } from "./coordination.js";
import { $, fill, h } from "./dom.js";
import { state } from "./state.js";
import { setLive } from "./stream.js";

// Why the last session ended, shown on the sign-in step after the reload (never a secret).
const ENDED_KEY = "failover-orchestrator.signed-out";

// Whether reads need no token here (from whoami): decides what a refused token ends.
const session = { publicReads: false };

/** GET /api/v1/whoami with `tok` ("" sends none): `{ status, body, retryAfter }`. */
async function whoami(tok) {
  const resp = await apiFetch("/api/v1/whoami", { token: tok });
  return { status: resp.status, body: await resp.json().catch(() => null), retryAfter: resp.headers.get("Retry-After") };
}

/** "HTTP 401: the bearer token is not valid" from an answer. */
const answer = (r) => `HTTP ${r.status}${r.body && r.body.error ? `: ${r.body.error}` : ""}`;

/** Forgets the token and reloads: the page starts over signed out (showing `why` on the sign-in step). */
export function endSession(why) {
  token.clear();
  if (why) sessionStorage.setItem(ENDED_KEY, why);
  location.reload();
}

/**
 * The server refused the tab's token (a 401 to an action). Where reads need a token the session
 * is over; where they are public, the token is forgotten and the dialog asks for another.
 */
export function tokenRefused(message) {
  if (!session.publicReads) {
    endSession(`The orchestrator refused the token (${message || "HTTP 401"}). Sign in again.`);
    return;
  }
  token.clear();
  showPrincipal({ name: "anonymous", role: "viewer", authenticated: false });
}

/** The header's "signed in as …" with "Sign out", or "Sign in" where reads are public. */
function showPrincipal(p) {
  state.principal = p;
  const signedIn = Boolean(p && p.authenticated && token.get());
  fill($("session-who"), signedIn ? ["signed in as ", h("b", null, p.name), ` (${p.role})`] : "");
  $("signout").hidden = !signedIn;
  $("signin-open").hidden = signedIn || !session.publicReads;
  if (state.status) lockActions(state.status);
}

/** A token typed in an action dialog where reads are public: learn whom it names (for the header and the role). */
export async function adoptToken(tok) {
  const r = await whoami(tok).catch(() => null);
  if (r && r.status === 200 && tok === token.get()) showPrincipal(r.body);
}

/** Shows the sign-in step (with `why` when there is something to say). */
function showSignIn(why) {
  $("signin").hidden = false;
  const err = $("signin-error");
  err.textContent = why || "";
  err.hidden = !why;
  $("signin-token").focus();
}

/** Resolves once a token typed into the sign-in step is accepted; each refusal is shown there. */
function signInForm() {
  return new Promise((resolve) => {
    $("signin-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const typed = $("signin-token").value.trim();
      if (!typed) { showSignIn("Enter a token."); return; }
      const button = $("signin-submit");
      button.disabled = true;
      let r;
      try {
        r = await whoami(typed);
      } catch (e) {
        showSignIn(`Could not reach the orchestrator: ${e.message || e}`);
        return;
      } finally {
        button.disabled = false;
      }
      if (r.status === 200 && r.body && r.body.authenticated) {
        token.set(typed);
        $("signin-token").value = "";
        $("signin").hidden = true;
        resolve(r.body);
      } else if (r.status === 200) {
        showSignIn("This orchestrator does not check tokens (it has no [auth] section): its reads are open and its actions disabled.");
      } else if (r.status === 401) {
        showSignIn(`The token was not accepted (${answer(r)}).`);
      } else if (r.status === 429) {
        showSignIn(`Too many attempts (${answer(r)}); retry in ${r.retryAfter || "a few"} s.`);
      } else {
        showSignIn(`Could not sign in (${answer(r)}).`);
      }
    });
  });
}

/**
 * Decides what the page may show. Resolves when it may show the status (signed in, or public
 * reads); until then only the sign-in step is on the page.
 */
export async function startSession() {
  whenTokenRefused((resp) => tokenRefused(`HTTP ${resp.status}`));
  $("signout").addEventListener("click", () => endSession(""));
  $("signin-open").addEventListener("click", () => showSignIn(""));
  let ended = sessionStorage.getItem(ENDED_KEY);
  sessionStorage.removeItem(ENDED_KEY);
  const form = signInForm();
  const stored = token.get();
  if (stored) {
    const r = await whoami(stored);
    if (r.status === 200 && r.body && r.body.authenticated) {
      session.publicReads = Boolean(r.body.public_reads);
      showPrincipal(r.body);
      return r.body;
    }
    token.clear();
    if (r.status === 401) ended = ended || "The token this tab held was refused (HTTP 401). Sign in again.";
  }
  const anon = await whoami("");
  if (anon.status === 200) {
    session.publicReads = true;
    showPrincipal(anon.body);
    // Public reads: "Sign in" (and its form) stays available without holding the page back.
    form.then((p) => { showPrincipal(p); });
    return anon.body;
  }
  if (anon.status !== 401) {
    showSignIn(`The orchestrator answered ${answer(anon)}; reload the page to try again.`);
  } else {
    setLive("signed-out");
    showSignIn(ended || "");
  }
  const p = await form;
  showPrincipal(p);
  return p;
}
