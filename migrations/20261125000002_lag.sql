-- Replication lag samples (raw, batched inserts) and per-minute aggregates.

CREATE TABLE lag_samples (
    region         text             NOT NULL,
    at             timestamptz      NOT NULL,
    bytes          bigint,
    seconds        double precision,
    state          text             NOT NULL,
    bytes_source   text,
    seconds_source text
);
-- "region X, last hour"
CREATE INDEX lag_samples_region_at ON lag_samples (region, at DESC);
-- "all regions, last 5 minutes" (and retention)
CREATE INDEX lag_samples_at ON lag_samples USING brin (at);

CREATE TABLE lag_minutes (
    region       text             NOT NULL,
    minute       timestamptz      NOT NULL,
    samples      integer          NOT NULL,
    min_bytes    bigint,
    max_bytes    bigint,
    avg_bytes    double precision,
    p95_bytes    double precision,
    min_seconds  double precision,
    max_seconds  double precision,
    avg_seconds  double precision,
    p95_seconds  double precision,
    PRIMARY KEY (region, minute)
);
