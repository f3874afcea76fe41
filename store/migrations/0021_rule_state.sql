-- dothi rule engine state: per-series evaluation state and per-job watermarks.
--
-- The rule engine (analytics/evaluate.py) judges each new reading of a series once. Where it got
-- to (last_ts, the watermark) and its state machine (pending since, active alert, hysteresis and
-- flapping bookkeeping) are saved in the same transaction as the alert changes they caused, so
-- a restart neither repeats an alert nor skips a reading.

CREATE TABLE rule_series_state (
    rule_id     text        NOT NULL,
    device_id   text        NOT NULL,
    metric      text        NOT NULL,
    -- Data time of the newest reading judged (or the evaluation time, for stale rules).
    last_ts     timestamptz NOT NULL,
    state       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, device_id, metric)
);

-- Where periodic jobs (AQI, energy, late-data scans) got to.
CREATE TABLE analytics_watermarks (
    job         text        PRIMARY KEY,
    value       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
