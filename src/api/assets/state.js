// The page's shared state: the last status snapshot and the connection's clock.
// Each module keeps its own state (cards, events, lag history); only what several
// modules read lives here.

/** The last snapshot, the clock skew and the connection state. */
export const state = {
  status: null,
  skewMs: 0, // browser clock minus server clock, from generated_at
  receivedAt: 0,
  live: "connecting",
};

/** The server's clock, as far as the browser can tell. */
export const serverNow = () => Date.now() - state.skewMs;
