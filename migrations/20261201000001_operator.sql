-- Operator control (issue 5): drills with their step timeline, manual operations,
-- the operator hold (a manual failover kept across restarts), idempotency keys.
-- Every row id is chosen by the orchestrator so buffered writes can be retried.

CREATE TABLE drills (
    id           uuid PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    actor        text        NOT NULL,
    reason       text        NOT NULL,
    dry_run      boolean     NOT NULL,
    -- the validated request: evacuate / target / steps / hold / schedule name
    spec         jsonb       NOT NULL,
    -- the weights before the drill: what a rollback returns to
    baseline     jsonb       NOT NULL,
    -- shifting | holding | rolling_back | completed | aborted | failed | interrupted | dry_run
    state        text        NOT NULL,
    step         integer,
    report       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX drills_requested_at ON drills (requested_at DESC);
CREATE INDEX drills_unfinished ON drills (requested_at DESC) WHERE finished_at IS NULL;

CREATE TABLE drill_events (
    id       uuid PRIMARY KEY,
    -- insertion order: the writer records events in the order they happened
    seq      bigserial   NOT NULL,
    drill_id uuid        NOT NULL REFERENCES drills (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    kind     text        NOT NULL,
    step     integer,
    plan_id  uuid,
    weights  jsonb,
    detail   text        NOT NULL
);
CREATE INDEX drill_events_drill ON drill_events (drill_id, seq);

CREATE TABLE operations (
    id           uuid PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    actor        text        NOT NULL,
    -- failover | switchover | failback | maintenance
    kind         text        NOT NULL,
    target       text,
    reason       text        NOT NULL,
    -- waiting | applied | verified | refused | timed_out | interrupted | superseded
    state        text        NOT NULL,
    plan_id      uuid,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX operations_requested_at ON operations (requested_at DESC);

-- At most one row: the weights an operator pinned with a manual failover or switchover.
CREATE TABLE operator_hold (
    id           integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    operation_id uuid        NOT NULL,
    since        timestamptz NOT NULL,
    weights      jsonb       NOT NULL,
    reason       text        NOT NULL,
    -- region allowed over its lag limit, and why (forced failover)
    lag_override jsonb
);

CREATE TABLE idempotency_keys (
    actor       text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    created_at  timestamptz NOT NULL,
    status      smallint,
    body        jsonb,
    PRIMARY KEY (actor, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
