-- Writes the store refused for good (a data error, a constraint, an oversize value): kept
-- here with the error so that one bad record never stops the writes after it.
-- `payload` is the write as JSON text (text, not jsonb: jsonb refuses the \u0000 a bad
-- record may hold, and the point is to keep what was refused).
CREATE TABLE dead_letters (
    id        uuid        PRIMARY KEY,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    error     text        NOT NULL,
    payload   text        NOT NULL
);
CREATE INDEX dead_letters_at ON dead_letters (at DESC);

-- Lag samples are replayed from the spill file after a crash: one sample per region and
-- time, so a replayed batch lands once.
DELETE FROM lag_samples a USING lag_samples b
 WHERE a.region = b.region AND a.at = b.at AND a.ctid < b.ctid;
CREATE UNIQUE INDEX lag_samples_region_at_once ON lag_samples (region, at);
