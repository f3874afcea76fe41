-- Raw look-ups for the query helpers (store/queries.py, store/energy.py), as functions.
--
-- A rollup query falls back to raw readings only for buckets with a pending dirty mark, which is
-- usually none. Written as a join, the raw part is planned over every chunk of the range even
-- when it never runs (7.7 ms of planning against 1 ms of execution for a 30-day hourly series);
-- inside a PL/pgSQL function it is planned only when called, for one bucket's chunks.

CREATE FUNCTION rollup_raw_agg(
    p_device text, p_metric text, p_from timestamptz, p_to timestamptz,
    OUT count bigint, OUT sum double precision, OUT min double precision,
    OUT max double precision, OUT first double precision, OUT first_ts timestamptz,
    OUT last double precision, OUT last_ts timestamptz
) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    SELECT count(*), sum(r.value), min(r.value), max(r.value), first(r.value, r.ts), min(r.ts),
           last(r.value, r.ts), max(r.ts)
    INTO count, sum, min, max, first, first_ts, last, last_ts
    FROM readings AS r
    WHERE r.device_id = p_device AND r.metric = p_metric AND r.ts >= p_from AND r.ts < p_to;
END
$$;

CREATE FUNCTION rollup_raw_range(
    p_device text, p_metric text, p_from timestamptz, p_to timestamptz
) RETURNS TABLE (ts timestamptz, value double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN QUERY
    SELECT r.ts, r.value FROM readings AS r
    WHERE r.device_id = p_device AND r.metric = p_metric AND r.ts >= p_from AND r.ts < p_to;
END
$$;

-- The newest reading before p_before (NULLs when there is none).
CREATE FUNCTION rollup_raw_before(
    p_device text, p_metric text, p_before timestamptz,
    OUT ts timestamptz, OUT value double precision
) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    SELECT r.ts, r.value INTO ts, value FROM readings AS r
    WHERE r.device_id = p_device AND r.metric = p_metric AND r.ts < p_before
    ORDER BY r.ts DESC LIMIT 1;
END
$$;
