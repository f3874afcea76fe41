-- dothi air quality history: hourly and daily AQI per station (VN_AQI and US EPA AQI), hours to
-- recompute, and QCVN 05:2023 exceedances. Written by analytics/aqi_job.py.

-- One row per (station, method, hour). hour = start of the hour (UTC); the value is the AQI of
-- the hour ending at hour + 1 h (QĐ 1459 labels hours by their end).
CREATE TABLE aqi_hourly (
    station_id  text        NOT NULL,
    method      text        NOT NULL CHECK (method IN ('VN_AQI', 'US_EPA_AQI')),
    hour        timestamptz NOT NULL,
    value       integer     NOT NULL CHECK (value BETWEEN 0 AND 500),
    category    text        NOT NULL,
    dominant    text        NOT NULL,
    sub_indices jsonb       NOT NULL,
    inputs      jsonb       NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, method, hour)
);
CREATE INDEX aqi_hourly_hour_idx ON aqi_hourly (hour DESC);

-- One row per (station, method, local day in Asia/Ho_Chi_Minh).
CREATE TABLE aqi_daily (
    station_id  text        NOT NULL,
    method      text        NOT NULL CHECK (method IN ('VN_AQI', 'US_EPA_AQI')),
    day         date        NOT NULL,
    value       integer     NOT NULL CHECK (value BETWEEN 0 AND 500),
    category    text        NOT NULL,
    dominant    text        NOT NULL,
    sub_indices jsonb       NOT NULL,
    inputs      jsonb       NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, method, day)
);

-- Hours whose inputs changed after they were computed (late data, replays, backfills): the job
-- recomputes each (and the hours whose NowCast or day they feed), then deletes the mark.
CREATE TABLE aqi_dirty (
    station_id  text        NOT NULL,
    hour        timestamptz NOT NULL,
    marked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, hour)
);

-- QCVN 05:2023/BTNMT exceedances of 1 h, 8 h (rolling) and 24 h (local day) means.
CREATE TABLE qcvn05_exceedances (
    station_id   text             NOT NULL,
    pollutant    text             NOT NULL,
    averaging    text             NOT NULL CHECK (averaging IN ('1h', '8h', '24h')),
    period_start timestamptz      NOT NULL,
    period_end   timestamptz      NOT NULL,
    value        double precision NOT NULL,
    limit_value  double precision NOT NULL,
    hours        integer          NOT NULL,
    recorded_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, pollutant, averaging, period_start)
);
CREATE INDEX qcvn05_exceedances_start_idx ON qcvn05_exceedances (period_start DESC);
