-- dothi rollups: 1 min / 1 h / 1 day (UTC and Asia/Ho_Chi_Minh) tiers, dirty ranges, latest.
--
-- The tiers are self-maintained (store/rollups.py), not continuous aggregates: the Apache edition
-- of TimescaleDB has none, and one code path on both editions keeps results identical.
-- docs/storage.md explains how the tiers stay exact under late data.

-- One row per (device, metric, bucket). avg = sum / count. first/last are the values at
-- first_ts/last_ts (the earliest and latest reading in the bucket). counter_inc is filled for
-- counter metrics only (energy): the increase inside the bucket with counter resets handled
-- (a drop means the counter restarted from 0, so the increment is the new value).
CREATE TABLE rollup_1m (
    device_id   text             NOT NULL,
    metric      text             NOT NULL,
    bucket      timestamptz      NOT NULL,
    count       integer          NOT NULL,
    sum         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    first       double precision NOT NULL,
    first_ts    timestamptz      NOT NULL,
    last        double precision NOT NULL,
    last_ts     timestamptz      NOT NULL,
    counter_inc double precision,
    PRIMARY KEY (device_id, metric, bucket)
) WITH (fillfactor = 90);  -- the newest buckets are rewritten every refresh: leave room for HOT
SELECT create_hypertable('rollup_1m', 'bucket', chunk_time_interval => interval '7 days');

CREATE TABLE rollup_1h (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 90);
SELECT create_hypertable('rollup_1h', 'bucket', chunk_time_interval => interval '30 days');

-- UTC days.
CREATE TABLE rollup_1d (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 90);
SELECT create_hypertable('rollup_1d', 'bucket', chunk_time_interval => interval '365 days');

-- Local days in Asia/Ho_Chi_Minh (UTC+7, no DST): bucket = local midnight as a timestamptz.
CREATE TABLE rollup_1d_local (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 90);
SELECT create_hypertable('rollup_1d_local', 'bucket', chunk_time_interval => interval '365 days');

-- Ranges of 1 min buckets whose rollups are stale, written by rollups.on_batch in the ingest
-- transaction and consumed by rollups.refresh. Append-only and unindexed on purpose: no unique
-- key means an insert never waits for (or races with) a refresh deleting the same key, and no
-- index keeps the ingest hot path cheap. lo and hi are 1 min buckets of the same UTC day.
CREATE TABLE rollup_dirty (
    device_id   text        NOT NULL,
    metric      text        NOT NULL,
    lo          timestamptz NOT NULL,
    hi          timestamptz NOT NULL,
    marked_at   timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 10000);

-- Where each source relation is complete again after retention dropped its older chunks. A
-- bucket older than its source's horizon cannot be recomputed exactly, so refresh leaves it.
CREATE TABLE rollup_horizon (
    relation      text        PRIMARY KEY,
    complete_from timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO rollup_horizon (relation)
VALUES ('readings'), ('rollup_1m'), ('rollup_1h'), ('rollup_1d'), ('rollup_1d_local');

-- Latest reading per (device, metric), upserted per ingest batch.
CREATE TABLE latest (
    device_id   text             NOT NULL,
    metric      text             NOT NULL,
    ts          timestamptz      NOT NULL,
    value       double precision NOT NULL,
    quality     smallint         NOT NULL,
    PRIMARY KEY (device_id, metric)
) WITH (fillfactor = 70);  -- every batch updates its rows in place (HOT)

-- Readings stored before this migration: mark them dirty and seed latest, once.
INSERT INTO rollup_dirty (device_id, metric, lo, hi)
SELECT device_id, metric, time_bucket('1 minute', min(ts)), time_bucket('1 minute', max(ts))
FROM readings
GROUP BY device_id, metric, time_bucket('1 day', ts);

INSERT INTO latest (device_id, metric, ts, value, quality)
SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value, quality
FROM readings
ORDER BY device_id, metric, ts DESC;
