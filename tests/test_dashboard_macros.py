"""The Grafana macro and template-variable expander the panel tests rely on (dashboards.macros)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboards.macros import (
    MacroError,
    TimeRange,
    Variable,
    auto_interval,
    expand,
    format_interval,
    parse_interval,
)

START = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
END = datetime(2026, 11, 21, 5, 30, 15, tzinfo=timezone(timedelta(hours=7)))
RANGE = TimeRange(
    START,
    END,
    timedelta(minutes=5),
    {
        "area": Variable("area", ("tp-nam-dinh", "hai-hau")),
        "one": Variable("one", ("it's",), multi=False),
        "url": Variable("url", ("https://ioc.example.vn",), multi=False),
    },
)


def test_time_macros_are_utc_rfc3339() -> None:
    assert expand("WHERE $__timeFilter(r.bucket)", RANGE) == (
        "WHERE r.bucket BETWEEN '2026-11-20T17:00:00Z' AND '2026-11-20T22:30:15Z'"
    )
    assert expand("$__timeFrom()::timestamptz, $__timeTo()", RANGE) == (
        "'2026-11-20T17:00:00Z'::timestamptz, '2026-11-20T22:30:15Z'"
    )


def test_time_group_uses_time_bucket_in_seconds() -> None:
    assert expand("SELECT $__timeGroupAlias(bucket, $__interval), x", RANGE) == (
        "SELECT time_bucket('300.000s',bucket) AS \"time\", x"
    )
    assert expand("GROUP BY $__timeGroup(bucket, '1h')", RANGE) == (
        "GROUP BY time_bucket('3600.000s',bucket)"
    )
    # Grafana's compatibility rule: $__timeGroup directly followed by a comma gets the alias.
    assert expand("SELECT $__timeGroup(ts,5m), v", RANGE) == (
        "SELECT time_bucket('300.000s',ts) AS \"time\", v"
    )
    assert expand("$__time(ts), $__timeEpoch(ts)", RANGE) == (
        'ts AS "time", extract(epoch from ts) as "time"'
    )


def test_interval_variables() -> None:
    assert expand("'$__interval' / $__interval_ms", RANGE) == "'5m' / 300000"


def test_template_variables_are_quoted_like_grafanas_sql_sources() -> None:
    assert expand("IN ($area)", RANGE) == "IN ('tp-nam-dinh','hai-hau')"
    assert expand("IN (${area})", RANGE) == "IN ('tp-nam-dinh','hai-hau')"
    assert expand("IN ([[area]])", RANGE) == "IN ('tp-nam-dinh','hai-hau')"
    assert expand("${area:raw}", RANGE) == "tp-nam-dinh,hai-hau"
    # A single-value variable is inserted as it is (quotes doubled), and quoted on request.
    assert expand("'$one'", RANGE) == "'it''s'"
    assert expand("${one:sqlstring}", RANGE) == "'it''s'"
    assert expand("${url}/ops", RANGE) == "https://ioc.example.vn/ops"


def test_dollar_quoting_and_text_are_left_alone() -> None:
    assert expand("SELECT 'a $ b', $1", RANGE) == "SELECT 'a $ b', $1"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeFilter()", "needs 1 argument"),
        ("$__timeGroup(ts)", "needs 2 argument"),
        ("$__unixEpochFilterX(ts)", "unknown macro"),
        ("$__timeFilter", "is not a macro call"),
        ("WHERE x IN ($nope)", "unknown template variable $nope"),
        ("$__timeGroup(ts, fortnight)", "error parsing interval"),
        ("${area:json}", "not supported"),
    ],
)
def test_what_grafana_would_refuse_is_refused(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message.replace("$", r"\$")):
        expand(sql, RANGE)


def test_intervals() -> None:
    assert parse_interval("'30s'") == timedelta(seconds=30)
    assert parse_interval("1M") == timedelta(days=30)
    assert parse_interval("100ms") == timedelta(milliseconds=100)
    assert format_interval(timedelta(minutes=1)) == "1m"
    assert format_interval(timedelta(hours=2)) == "2h"
    assert format_interval(timedelta(days=7)) == "1w"
    assert format_interval(timedelta(seconds=90)) == "90s"
    # 24 h over 1,000 points would be 86 s: rounded up to a nice 2 minutes.
    assert auto_interval(START, START + timedelta(hours=24)) == timedelta(minutes=2)
    # Never below the data source's minimum interval (the 1-minute tier).
    assert auto_interval(START, START + timedelta(hours=1)) == timedelta(minutes=1)
    assert auto_interval(START, START + timedelta(days=120)) == timedelta(hours=3)


def test_naive_ranges_are_refused() -> None:
    naive = TimeRange(datetime(2026, 1, 1), datetime(2026, 1, 2), timedelta(minutes=1))  # noqa: DTZ001
    with pytest.raises(MacroError, match="timezone-aware"):
        expand("$__timeFrom()", naive)
