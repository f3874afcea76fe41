-- dothi alerts: one row per alert with its current state, and the full history of every change.
--
-- Lifecycle (analytics/alerts.py): open -> acknowledged -> resolved; open -> resolved. A resolved
-- alert is never reopened: the next occurrence is a new alert. The rule engine escalates an
-- acknowledged alert back to open when its severity rises (it needs a new acknowledgement).

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         text        NOT NULL,
    kind            text        NOT NULL,
    device_id       text        NOT NULL,
    -- The metric the rule watches; '*' for device-level rules (stale/offline).
    metric          text        NOT NULL,
    -- The device's area when the alert opened (alerts keep their place if a device moves).
    area_id         text        REFERENCES areas (id) ON DELETE SET NULL,
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state           text        NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    -- Too many open/resolve transitions in the rule's window: kept open as one alert and its
    -- notifications muted until the condition is stable again.
    flapping        boolean     NOT NULL DEFAULT false,
    title           text        NOT NULL,
    message         text        NOT NULL,
    value           double precision,
    threshold       double precision,
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Data time: when the condition started (the first violating reading) and when it was
    -- confirmed (the duration elapsed), from reading timestamps, not the evaluator's clock.
    started_at      timestamptz NOT NULL,
    opened_at       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    resolved_by     text,
    -- 'auto' (the condition cleared), 'manual' (an operator), 'rule_removed'.
    resolution      text CHECK (resolution IN ('auto', 'manual', 'rule_removed')),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- At most one unresolved alert per (rule, device, metric): the engine's upsert key, and what
-- keeps two evaluators (or a restart) from opening the same alert twice.
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (rule_id, device_id, metric)
    WHERE state <> 'resolved';
CREATE INDEX alerts_state_idx ON alerts (state, id DESC);
CREATE INDEX alerts_device_idx ON alerts (device_id, id DESC);
CREATE INDEX alerts_area_idx ON alerts (area_id, id DESC);

-- Every change of every alert, append-only: who, when, what, and comments.
CREATE TABLE alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    event       text        NOT NULL CHECK (event IN (
                    'opened', 'acknowledged', 'resolved', 'commented', 'escalated',
                    'deescalated', 'flapping', 'stable')),
    -- 'system' for the rule engine, otherwise the operator (user name or API key id).
    actor       text        NOT NULL CHECK (actor <> ''),
    from_state  text,
    to_state    text,
    severity    text        NOT NULL,
    comment     text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Whether the event is sent to the notification channels (false while flapping).
    notify      boolean     NOT NULL DEFAULT true
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, id);
