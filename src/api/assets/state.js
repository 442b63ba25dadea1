// The page's shared state: the last status snapshot, the connection's clock, and
// who the tab is signed in as.
// Each module keeps its own state (cards, events, lag history); only what several
// modules read lives here.

/** The last snapshot, the clock skew, the connection state and the caller (`/api/v1/whoami`). */
export const state = {
  status: null,
  principal: null, // { name, role, authenticated, public_reads } once known
  skewMs: 0, // browser clock minus server clock, from generated_at
  receivedAt: 0,
  live: "connecting",
};

/** The server's clock, as far as the browser can tell. */
export const serverNow = () => Date.now() - state.skewMs;
