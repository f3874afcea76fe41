-- dothi rule engine: checkpoints of each series' state machine, for judging late readings.
--
-- A reading that arrives after its series' watermark has passed its timestamp (a device's
-- buffered uplinks after an outage, a replay of the past) is judged by rewinding the series to
-- the newest checkpoint before it and running the state machine again over the merged readings
-- (analytics/evaluate.py). Checkpoints are taken at most once per data hour per series and kept
-- for the late-data horizon (48 h by default).

CREATE TABLE rule_series_checkpoints (
    rule_id     text        NOT NULL,
    device_id   text        NOT NULL,
    metric      text        NOT NULL,
    -- Data time of the newest reading judged when the state was saved.
    ts          timestamptz NOT NULL,
    state       jsonb       NOT NULL,
    PRIMARY KEY (rule_id, device_id, metric, ts)
);
