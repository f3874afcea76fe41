"""SQL of the SensorThings service (``/sta/v1.1``): one view per entity set, and how to run them.

Each entity set is a ``SELECT`` over dothi's tables with the caller's visibility predicate
built in, so no query the SensorThings compiler assembles around it (filters, navigation,
expansion, counts) can see a device its caller may not see. The views are used as subqueries
(``FROM (<view>) AS e0``); PostgreSQL flattens them, so filters on ``device_id``, ``metric`` and
``ts`` reach the ``readings`` index and its chunks directly, and columns a query does not select
(the Datastreams' first-reading lookup) are never computed.

Parameters every view may use: the visibility parameters (``vis_areas``) and the metric
catalogue arrays ``sta_m_*`` (see :func:`api.sta.units.catalogue_params`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg.rows import dict_row

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from store.visibility import Visibility

    AConn = psycopg.AsyncConnection[Any]

_DEVICE_POS: Final = "(d.lat IS NOT NULL AND d.lon IS NOT NULL)"
_AREA_POS: Final = "(a.lat IS NOT NULL AND a.lon IS NOT NULL)"
# A device without coordinates of its own is placed at its area's centre (areas carry one).
_LON: Final = f"CASE WHEN {_DEVICE_POS} THEN d.lon WHEN {_AREA_POS} THEN a.lon END"
_LAT: Final = f"CASE WHEN {_DEVICE_POS} THEN d.lat WHEN {_AREA_POS} THEN a.lat END"
_SOURCE: Final = f"CASE WHEN {_DEVICE_POS} THEN 'device' WHEN {_AREA_POS} THEN 'area' END"
_DEVICES: Final = "FROM devices AS d LEFT JOIN areas AS a ON a.id = d.area_id"

_METRICS: Final = (
    "unnest(%(sta_m_name)s::text[], %(sta_m_desc)s::text[], %(sta_m_uname)s::text[],"
    " %(sta_m_usym)s::text[], %(sta_m_udef)s::text[], %(sta_m_counter)s::boolean[])"
    " AS m(metric, description, unit_name, unit_symbol, unit_definition, counter)"
)

# The first reading of a series, cheaply: the daily rollup's first bucket holds its time. Where
# retention dropped raw chunks the rollup remembers older readings than `readings` still has, and
# a series not rolled up yet has no row: both fall back to one ordered index probe into
# `readings` from the raw horizon on.
_FIRST_TS: Final = """(
    SELECT CASE WHEN f.first_ts >= h.t THEN f.first_ts ELSE (
        SELECT r.ts FROM readings AS r
        WHERE r.device_id = l.device_id AND r.metric = l.metric AND r.ts >= h.t
        ORDER BY r.ts LIMIT 1) END
    FROM (SELECT coalesce((SELECT rh.complete_from FROM rollup_horizon AS rh
                           WHERE rh.relation = 'readings'), '-infinity'::timestamptz) AS t) AS h
    LEFT JOIN LATERAL (
        SELECT t1.first_ts FROM rollup_1d AS t1
        WHERE t1.device_id = l.device_id AND t1.metric = l.metric
        ORDER BY t1.bucket LIMIT 1) AS f ON true)"""

_QUALITY: Final = (
    "CASE r.quality WHEN 1 THEN 'pass' WHEN 2 THEN 'not_evaluated' WHEN 3 THEN 'suspect'"
    " WHEN 4 THEN 'fail' WHEN 9 THEN 'missing' ELSE 'unknown' END"
)

_VIEWS: Final = {
    "Thing": f"""SELECT d.id AS id, coalesce(d.name, d.id) AS name,
        replace(d.kind, '_', ' ') || ' device' || coalesce(' in ' || a.name, '') AS description,
        jsonb_build_object('kind', d.kind, 'area_id', d.area_id, 'area_name', a.name,
            'public', d.public, 'created_at', d.created_at, 'last_seen', d.last_seen)
            AS properties
        {_DEVICES} WHERE {{vis}}""",
    "Location": f"""SELECT d.id AS id, coalesce(d.name, d.id) AS name,
        CASE WHEN {_DEVICE_POS} THEN 'Position of device ' || d.id
             ELSE 'Centre of area ' || a.name || ' (device ' || d.id || ' has no position)'
        END AS description,
        'application/geo+json' AS encoding_type, {_LON} AS lon, {_LAT} AS lat,
        jsonb_build_object('source', {_SOURCE}, 'area_id', d.area_id) AS properties
        {_DEVICES} WHERE {{vis}} AND ({_DEVICE_POS} OR {_AREA_POS})""",
    "HistoricalLocation": f"""SELECT d.id AS id, d.created_at AS time
        {_DEVICES} WHERE {{vis}} AND ({_DEVICE_POS} OR {_AREA_POS})""",
    "FeatureOfInterest": f"""SELECT d.id AS id, coalesce(d.name, d.id) AS name,
        'Surroundings of device ' || d.id || coalesce(' in ' || a.name, '') AS description,
        'application/geo+json' AS encoding_type, {_LON} AS lon, {_LAT} AS lat,
        jsonb_build_object('source', {_SOURCE}, 'area_id', d.area_id) AS properties
        {_DEVICES} WHERE {{vis}}""",
    "Datastream": f"""SELECT l.device_id AS device_id, l.metric AS metric, d.kind AS kind,
        coalesce(d.name, d.id) || ' · ' || coalesce(m.description, l.metric) AS name,
        coalesce(m.description, l.metric) || ' measured by ' || coalesce(d.name, d.id)
            AS description,
        'http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement'
            AS observation_type,
        coalesce(m.unit_name, '') AS unit_name, coalesce(m.unit_symbol, '') AS unit_symbol,
        coalesce(m.unit_definition, '') AS unit_definition,
        {_LON} AS lon, {_LAT} AS lat,
        {_FIRST_TS} AS phenomenon_start, l.ts AS phenomenon_end,
        jsonb_build_object('device_id', l.device_id, 'metric', l.metric, 'kind', d.kind,
            'last_value', l.value) AS properties
        FROM latest AS l JOIN devices AS d ON d.id = l.device_id
        LEFT JOIN areas AS a ON a.id = d.area_id
        LEFT JOIN {_METRICS} ON m.metric = l.metric
        WHERE {{vis}}""",
    # Sensors and ObservedProperties are the device kinds and metrics of the Datastreams the
    # caller can see: none is a dead end, and none reveals what hidden devices measure.
    "Sensor": """SELECT d.kind AS id, d.kind AS name,
        'Sensor model of the dothi devices of kind ' || d.kind AS description,
        'text/plain' AS encoding_type,
        'dothi device kind ' || d.kind || '; devices: /api/v1/devices?kind=' || d.kind
            AS metadata,
        jsonb_build_object('devices', count(*)) AS properties
        FROM devices AS d
        WHERE {vis} AND EXISTS (SELECT 1 FROM latest AS l WHERE l.device_id = d.id)
        GROUP BY d.kind""",
    "ObservedProperty": f"""SELECT m.metric AS id, m.metric AS name,
        'urn:dothi:metric:' || m.metric AS definition, m.description AS description,
        jsonb_build_object('unit', m.unit_symbol, 'counter', m.counter) AS properties
        FROM {_METRICS}
        WHERE m.metric IN (
            SELECT l.metric FROM latest AS l JOIN devices AS d ON d.id = l.device_id
            WHERE {{vis}})""",
    "Observation": f"""SELECT r.device_id AS device_id, r.metric AS metric, r.ts AS ts,
        r.value AS value, {_QUALITY} AS quality, r.received_at AS received_at
        FROM readings AS r JOIN devices AS d ON d.id = r.device_id WHERE {{vis}}""",
}

ENTITY_NAMES: Final = frozenset(_VIEWS)


def view(entity: str, vis: Visibility) -> str:
    """The parenthesised subquery of an entity set, filtered to what ``vis`` may see.

    Args:
        entity: the singular entity name (``Thing``, ``Observation`` …).
        vis: the caller's visibility; its predicate is applied to the devices row ``d``.
    """
    return "(" + _VIEWS[entity].replace("{vis}", vis.predicate("d")) + ")"


@contextlib.asynccontextmanager
async def read_snapshot(conn: AConn, timeout_ms: int) -> AsyncIterator[None]:
    """One read-only, repeatable-read transaction: every statement of a request (the page, its
    count, its expansions) sees the same data. Times are rendered in UTC and each statement is
    cancelled after ``timeout_ms``; both settings end with the transaction.

    ``conn`` must be in autocommit mode (the API's pool). The transaction is opened with its
    settings in one round trip; ``SET`` takes no bind parameters, and the timeout is the
    server's own integer, never request input.
    """
    ms = int(timeout_ms)
    await conn.execute(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
        f" SET LOCAL statement_timeout = {ms}; SET LOCAL TimeZone = 'UTC'"
    )
    try:
        yield
    except BaseException:
        # The pool would roll back too, but with a warning; a broken connection is its job.
        with contextlib.suppress(psycopg.Error):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def fetch(conn: AConn, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of a statement as dictionaries (binary results: no text parsing of times)."""
    async with conn.cursor(row_factory=dict_row, binary=True) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def fetch_value(conn: AConn, sql: str, params: Mapping[str, Any]) -> Any:
    """The first column of the first row, or None."""
    async with conn.cursor(binary=True) as cur:
        await cur.execute(sql, params)
        row = await cur.fetchone()
        return row[0] if row else None


async def existing_devices(conn: AConn, ids: list[str]) -> list[str]:
    """Which of ``ids`` exist at all (for auditing attempts on hidden ones)."""
    cur = await conn.execute("SELECT id FROM devices WHERE id = ANY(%s::text[])", (ids,))
    return sorted(r[0] for r in await cur.fetchall())
