-- dothi core schema: areas, devices, readings (hypertable), dead letters.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Administrative tree of the province: province -> city/district -> ward/town/commune.
CREATE TABLE areas (
    id          text PRIMARY KEY,
    parent_id   text REFERENCES areas (id) ON DELETE RESTRICT,
    level       text NOT NULL CHECK (level IN ('province', 'city', 'district', 'ward', 'town', 'commune')),
    name        text NOT NULL,
    name_en     text,
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK ((level = 'province') = (parent_id IS NULL))
);
CREATE INDEX areas_parent_idx ON areas (parent_id);

CREATE TABLE devices (
    id          text PRIMARY KEY,
    kind        text NOT NULL DEFAULT 'unknown',
    name        text,
    area_id     text REFERENCES areas (id) ON DELETE SET NULL,
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    public      boolean NOT NULL DEFAULT false,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Maintained per ingest batch (one UPDATE per device per batch, never per message).
    last_seen   timestamptz
);
CREATE INDEX devices_area_idx ON devices (area_id);
CREATE INDEX devices_kind_idx ON devices (kind);

-- One row per (device, metric, timestamp). quality: IOOS QARTOD flag (1 pass, 3 suspect).
CREATE TABLE readings (
    device_id   text             NOT NULL,
    metric      text             NOT NULL,
    ts          timestamptz      NOT NULL,
    value       double precision NOT NULL,
    received_at timestamptz      NOT NULL DEFAULT now(),
    quality     smallint         NOT NULL DEFAULT 1
);
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day');
-- The dedupe key (broker redeliveries, device retries) doubles as the covering index for
-- per-device range queries: (device, metric, ts) -> value without touching the heap.
CREATE UNIQUE INDEX readings_key ON readings (device_id, metric, ts) INCLUDE (value);

-- Input that could not be stored as it is, kept with the reason; replayable.
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text        NOT NULL,
    payload     bytea       NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    device_id   text,
    replayed_at timestamptz
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at);
