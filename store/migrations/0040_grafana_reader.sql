-- dothi read-only role for Grafana (dashboards/), and two small views its panels read.
--
-- dothi_grafana may SELECT exactly what the dashboards show: the rollup tiers (never raw
-- readings), latest values, areas, public columns of devices, alerts, AQI, QCVN exceedances,
-- energy by tariff band, rollup marks (lag) and dead letters without their payloads. Its
-- sessions are read-only and time-limited even if a grant slips in later. The password is set
-- by `dothi dashboards export|publish` (settings or DOTHI_HOME/secrets), never here: a
-- migration is committed, a password must not be.
--
-- Roles belong to the cluster, not the database: several databases of one cluster (tests, a
-- staging copy) share the role, so creating it tolerates an existing one. A migrating user
-- without CREATEROLE gets a notice instead of a failure; docs/dashboards.md says what to run.

-- Every area with each area it lies in (itself included): "devices in Nam Trực" is
-- `area_id IN (SELECT area_id FROM area_ancestors WHERE ancestor_id = 'nam-truc')`. Areas are a
-- few dozen rows, so the recursion is cheap wherever it is used.
CREATE VIEW area_ancestors AS
WITH RECURSIVE up (area_id, ancestor_id) AS (
    SELECT id, id FROM areas
    UNION ALL
    SELECT up.area_id, a.parent_id
    FROM up JOIN areas AS a ON a.id = up.ancestor_id
    WHERE a.parent_id IS NOT NULL
)
SELECT area_id, ancestor_id FROM up;

-- Flood alarm levels (báo động I/II/III, metres) of river gauges from devices.metadata, without
-- exposing the rest of the metadata (it may hold installation details). `gauge` names a gauge
-- of analytics.regulations.GAUGES when the device carries no levels of its own.
CREATE VIEW river_gauge_levels AS
SELECT
    d.id AS device_id,
    d.metadata ->> 'gauge' AS gauge,
    (d.metadata -> 'alarm_levels_m' ->> 'I')::double precision AS level_1,
    (d.metadata -> 'alarm_levels_m' ->> 'II')::double precision AS level_2,
    (d.metadata -> 'alarm_levels_m' ->> 'III')::double precision AS level_3
FROM devices AS d
WHERE d.kind = 'river_gauge';

DO $grafana$
DECLARE
    can_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO can_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dothi_grafana') THEN
        IF NOT can_create THEN
            RAISE NOTICE 'dothi_grafana not created: % lacks CREATEROLE (see docs/dashboards.md)',
                current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE dothi_grafana LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object THEN
            NULL;  -- another database of this cluster created it a moment ago
        END;
    END IF;
    IF can_create THEN
        -- Defence in depth: a write slipping through a future grant still fails, and a runaway
        -- panel query cannot hold a connection for long.
        ALTER ROLE dothi_grafana SET default_transaction_read_only = on;
        ALTER ROLE dothi_grafana SET statement_timeout = '30s';
    END IF;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO dothi_grafana', current_database());
    GRANT USAGE ON SCHEMA public TO dothi_grafana;
    GRANT SELECT ON
        areas, area_ancestors, river_gauge_levels, latest,
        rollup_1m, rollup_1h, rollup_1d, rollup_1d_local, rollup_dirty,
        alerts, aqi_hourly, aqi_daily, qcvn05_exceedances, energy_tou_daily
    TO dothi_grafana;
    -- Column grants: devices.metadata and the dead letters' payload and detail stay private.
    GRANT SELECT (id, kind, name, area_id, lat, lon, public, created_at, last_seen)
        ON devices TO dothi_grafana;
    GRANT SELECT (id, received_at, topic, reason, device_id, replayed_at)
        ON dead_letters TO dothi_grafana;
END
$grafana$;
