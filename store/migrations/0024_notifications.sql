-- dothi notifications: an outbox filled in the same transaction as the alert change it
-- announces, and one delivery row per (event, channel) with its retry schedule.
--
-- Evaluation only ever inserts rows here; the sender loop (analytics/notify.py) delivers them,
-- so a slow or dead webhook never holds up the rule engine.

-- One row per alert event to announce; 'dispatched' once fanned out to deliveries.
CREATE TABLE notification_outbox (
    event_id      bigint      PRIMARY KEY REFERENCES alert_events (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX notification_outbox_pending_idx ON notification_outbox (event_id)
    WHERE dispatched_at IS NULL;

CREATE FUNCTION alert_event_to_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notification_outbox (event_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

-- Every notified event, whoever writes it (rule engine, CLI, API), reaches the outbox.
CREATE TRIGGER alert_events_outbox AFTER INSERT ON alert_events
    FOR EACH ROW WHEN (NEW.notify) EXECUTE FUNCTION alert_event_to_outbox();

-- The delivery log: one row per (event, channel), retried with exponential back-off.
CREATE TABLE notification_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint      NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel         text        NOT NULL,  -- 'mqtt' or 'webhook:<name>'
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A sender claims a row by pushing this into the future; a crashed sender's claim lapses.
    claimed_until   timestamptz,
    last_error      text,
    last_status     integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (event_id, channel)
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';
