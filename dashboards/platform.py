"""*Tình trạng hệ thống* (Platform health): ingest rate, data and rollup lag, refused input by
reason (dead letters), database size, alerts opened."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import layout
from dashboards.panels import grid, series, single
from dashboards.sql import Tier, tier_rows

if TYPE_CHECKING:
    from grafana_foundation_sdk.models import dashboard as dm

UID: Final = "dothi-platform"

# Counting every series is the heaviest query on the platform's dashboards, so minutes are read
# for 6 h at most (the data tiers use 36 h). Ingest's own Prometheus metrics (/metrics on each
# worker) are the cheaper source of the instantaneous rate at large scale.
COUNT_TIERS: Final = (
    Tier("rollup_1m", 60, None, "6 hours"),
    Tier("rollup_1h", 3600, "6 hours", "62 days"),
    Tier("rollup_1d", 86400, "62 days", None),
)


def ingest_rate_sql() -> str:
    """Stored readings per second per device kind. A tier bucket coarser than the interval is
    spread over its own width, never over the (shorter) interval."""
    branch = (
        "SELECT t.bucket, d.kind, t.count, {width} AS width"
        " FROM {tier} AS t JOIN devices AS d ON d.id = t.device_id"
        " WHERE {gate} AND $__timeFilter(t.bucket)"
    )
    return f"""SELECT $__timeGroupAlias(r.bucket, $__interval), r.kind AS metric,
  sum(r.count) / greatest($__interval_ms / 1000.0, max(r.width)) AS "bản ghi/s"
FROM (
{tier_rows(branch, COUNT_TIERS)}
) AS r
GROUP BY 1, 2
ORDER BY 1"""


RATE_NOW: Final = """SELECT coalesce(sum(t.count), 0) / 600.0 AS "bản ghi/s"
FROM rollup_1m AS t
WHERE t.bucket >= date_trunc('minute', now()) - interval '11 minutes'
  AND t.bucket < date_trunc('minute', now()) - interval '1 minute'"""

ROLLUP_LAG: Final = """SELECT coalesce(extract(epoch FROM now() - min(marked_at)), 0) AS "giây"
FROM rollup_dirty"""

FRESHNESS: Final = """SELECT d.kind AS "Loại thiết bị", count(*) AS "Số thiết bị",
  count(*) FILTER (WHERE d.last_seen > now() - interval '15 minutes') AS "Hoạt động (15 phút)",
  count(*) FILTER (WHERE d.last_seen IS NULL OR d.last_seen <= now() - interval '1 hour')
    AS "Im lặng > 1 giờ",
  extract(epoch FROM now() - max(d.last_seen)) AS "Bản tin mới nhất (giây trước)"
FROM devices AS d
GROUP BY 1
ORDER BY 1"""

DATA_LAG: Final = """SELECT extract(epoch FROM now() - max(l.ts)) AS "giây"
FROM latest AS l"""

REJECTS: Final = """SELECT $__timeGroupAlias(x.received_at, $__interval), x.reason AS metric,
  count(*) AS "bản tin"
FROM dead_letters AS x
WHERE $__timeFilter(x.received_at)
GROUP BY 1, 2
ORDER BY 1"""

REJECT_TOTALS: Final = """SELECT x.reason AS "Lý do", count(*) AS "Số bản tin",
  count(*) FILTER (WHERE x.replayed_at IS NOT NULL) AS "Đã nạp lại",
  count(DISTINCT x.device_id) AS "Thiết bị", max(x.received_at) AS "Gần nhất"
FROM dead_letters AS x
WHERE $__timeFilter(x.received_at)
GROUP BY 1
ORDER BY 2 DESC"""

DB_SIZE: Final = """SELECT pg_database_size(current_database()) AS "Dung lượng\""""

TABLE_SIZES: Final = """SELECT h.hypertable_name AS "Bảng",
  hypertable_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass)
    AS "Dung lượng",
  h.num_chunks AS "Số chunk"
FROM timescaledb_information.hypertables AS h
ORDER BY 2 DESC"""

ALERTS_OPENED: Final = """SELECT $__timeGroupAlias(a.opened_at, $__interval), a.severity AS metric,
  count(*) AS "cảnh báo"
FROM alerts AS a
WHERE $__timeFilter(a.opened_at)
GROUP BY 1, 2
ORDER BY 1"""


def build() -> dm.Dashboard:
    """The Platform health dashboard."""
    rate = series(
        "Tốc độ ghi dữ liệu theo loại thiết bị",
        "Readings stored per second by device kind, counted from the rollup tiers (minutes up to"
        " 6 h, then hours, then days).",
        ingest_rate_sql(),
        unit="reqps",
        width=16,
    )
    dash = (
        layout.new(
            UID,
            "Tình trạng hệ thống",
            "Platform health: ingest rate, data freshness and rollup lag, refused input by"
            " reason (dead letters), database size, alerts opened.",
            time_from="now-6h",
        )
        .with_row(db.Row("Thu nhận dữ liệu"))
        .with_panel(rate)
        .with_panel(
            single(
                "Tốc độ ghi (10 phút qua)",
                "Readings per second over the last 10 complete minutes (1 min rollup).",
                RATE_NOW,
                unit="reqps",
                width=4,
                height=4,
            )
        )
        .with_panel(
            single(
                "Độ trễ tổng hợp",
                "Rollup lag: age of the oldest pending rollup mark, seconds (0: up to date).",
                ROLLUP_LAG,
                unit="s",
                width=4,
                height=4,
            )
        )
        .with_panel(
            single(
                "Độ trễ dữ liệu",
                "Data lag: age of the newest stored reading, seconds.",
                DATA_LAG,
                unit="s",
                width=8,
                height=4,
            )
        )
        .with_panel(
            grid(
                "Thiết bị theo loại",
                "Devices per kind: how many reported in the last 15 min, how many have been silent"
                " for over an hour, and the age of the newest message.",
                FRESHNESS,
                width=24,
                height=7,
            )
        )
        .with_row(db.Row("Dữ liệu bị từ chối"))
        .with_panel(
            series(
                "Bản tin bị từ chối theo lý do",
                "Messages refused into dead_letters per interval, by reason code.",
                REJECTS,
                width=14,
            )
        )
        .with_panel(
            grid(
                "Tổng hợp theo lý do",
                "Refused messages in the range per reason: total, replayed, devices, latest.",
                REJECT_TOTALS,
                width=10,
            )
        )
        .with_row(db.Row("Cơ sở dữ liệu và cảnh báo"))
        .with_panel(
            single(
                "Dung lượng cơ sở dữ liệu",
                "Size of the dothi database on disk.",
                DB_SIZE,
                unit="bytes",
                width=6,
                height=8,
            )
        )
        .with_panel(
            grid(
                "Dung lượng theo bảng",
                "Size and chunk count of each hypertable (readings and the rollup tiers).",
                TABLE_SIZES,
                width=8,
            ).unit("bytes")
        )
        .with_panel(
            series(
                "Cảnh báo mở theo mức độ",
                "Alerts opened per interval, by severity.",
                ALERTS_OPENED,
                width=10,
            )
        )
    )
    return layout.finish(dash)
