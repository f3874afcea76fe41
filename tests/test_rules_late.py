"""Late readings (buffered uplinks after an outage, replays of the past) are judged as if they
had arrived on time: the series is rewound to a checkpoint and judged again, events are timed at
the data's times, and judging the same data again repeats nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from analytics.evaluate import RuleEngine
from tests.analytics_support import add_device, alerts_of, every, insert, rules

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def threshold_rule(dev: str) -> str:
    return f"""
    [[rule]]
    id = "pm25-late-{dev}"
    kind = "threshold"
    title = "PM2.5 cao"
    scope = {{ device = "{dev}" }}
    metric = "pm25"
    op = ">"
    value = 50
    critical = 150
    for = "10m"
    hysteresis = 5
    hold = "15m"
    """


def timed_events(conn: psycopg.Connection, dev: str) -> list[tuple[int, str, str, datetime]]:
    rows = conn.execute(
        "SELECT e.alert_id, e.event, e.severity, e.at FROM alert_events AS e"
        " JOIN alerts AS a ON a.id = e.alert_id WHERE a.device_id = %s ORDER BY e.id",
        (dev,),
    ).fetchall()
    return [(int(a), str(e), str(s), at) for a, e, s, at in rows]


def test_late_readings_open_and_resolve_an_alert_at_the_data_times(db_url: str, uid: str) -> None:
    dev = f"aq-late-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        # On time: normal air before and after a two-hour outage.
        insert(conn, dev, "pm25", every(T0, MIN, [40] * 60))
        insert(conn, dev, "pm25", every(T0 + 3 * HOUR, MIN, [40] * 61))
        engine = RuleEngine(lookback=6 * HOUR)
        engine.evaluate(conn, rs, T0 + 4 * HOUR)
        assert alerts_of(conn, dev) == []
        # The device's buffered uplinks arrive: the air was bad during the outage.
        late = [40] * 30 + [80] * 20 + [160] * 5 + [80] * 15 + [40] * 50
        insert(conn, dev, "pm25", every(T0 + HOUR, MIN, late))
        engine.evaluate(conn, rs, T0 + 4 * HOUR + MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.started_at == T0 + 90 * MIN
        assert alert.opened_at == T0 + 100 * MIN
        assert alert.state == "resolved"
        assert alert.resolved_at == T0 + 130 * MIN
        first = timed_events(conn, dev)
        assert [(e, s, at) for _, e, s, at in first] == [
            ("opened", "warning", T0 + 100 * MIN),
            ("escalated", "critical", T0 + 110 * MIN),
            ("deescalated", "warning", T0 + 115 * MIN),
            ("resolved", "warning", T0 + 130 * MIN),
        ]

        # (2) Evaluating again, and judging the same stretch again (one more late reading that
        # changes nothing makes the engine rewind over it), repeats nothing.
        engine.evaluate(conn, rs, T0 + 4 * HOUR + 2 * MIN)
        insert(conn, dev, "pm25", [(T0 + 95 * MIN + timedelta(seconds=30), 81.0)])
        engine.evaluate(conn, rs, T0 + 4 * HOUR + 3 * MIN)
        RuleEngine().evaluate(conn, rs, T0 + 4 * HOUR + 4 * MIN)
        assert len(alerts_of(conn, dev)) == 1
        assert timed_events(conn, dev) == first


def test_late_readings_that_change_nothing_record_nothing(db_url: str, uid: str) -> None:
    calm, busy = f"aq-calm-{uid}", f"aq-busy-{uid}"
    rs = rules(threshold_rule(calm) + threshold_rule(busy))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, calm, "air_quality")
        add_device(conn, busy, "air_quality")
        insert(conn, calm, "pm25", every(T0, MIN, [30] * 60))
        insert(conn, calm, "pm25", every(T0 + 2 * HOUR, MIN, [30] * 60))
        # An alert open on time, before and after a gap.
        insert(conn, busy, "pm25", every(T0, MIN, [80] * 60))
        insert(conn, busy, "pm25", every(T0 + 2 * HOUR, MIN, [80] * 60))
        engine = RuleEngine(lookback=4 * HOUR)
        engine.evaluate(conn, rs, T0 + 3 * HOUR)
        assert alerts_of(conn, calm) == []
        [alert] = alerts_of(conn, busy)
        before = timed_events(conn, busy)
        assert [e for _, e, _, _ in before] == ["opened"]
        # The gaps are filled late with readings that say what was already known.
        insert(conn, calm, "pm25", every(T0 + HOUR, MIN, [35] * 60))
        insert(conn, busy, "pm25", every(T0 + HOUR, MIN, [90] * 60))
        engine.evaluate(conn, rs, T0 + 3 * HOUR + MIN)
        assert alerts_of(conn, calm) == []
        assert timed_events(conn, calm) == []
        assert [a.id for a in alerts_of(conn, busy)] == [alert.id]
        assert timed_events(conn, busy) == before
        assert alerts_of(conn, busy)[0].state == "open"
