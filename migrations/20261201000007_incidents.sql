-- Incidents (issue 7): every traffic move away from a region as one timeline,
-- from the first failed probe to the verified flip. Written (upserted) at each milestone.
CREATE TABLE incidents (
    id           uuid PRIMARY KEY,
    region       text NOT NULL,
    opened_at    timestamptz NOT NULL,
    plan_id      uuid,
    kind         text,
    verified_at  timestamptz,
    body         jsonb NOT NULL
);
CREATE INDEX incidents_opened_at ON incidents (opened_at DESC);
