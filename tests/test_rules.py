"""The rule engine on synthetic series in the real database: each kind fires, holds, clears.

Time is injected (``now``), never slept: readings are inserted with timestamps around a fixed
T0 and the engine is asked to evaluate "as of" successive instants.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics import alerts
from analytics.evaluate import RuleEngine
from tests.analytics_support import add_device, alerts_of, events_of, every, insert, rules

# Monday 2 March 2026, 08:00 in Nam Định.
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def threshold_rule(dev: str, extra: str = "") -> str:
    return f"""
    [[rule]]
    id = "pm25-{dev}"
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
    {extra}
    """


def test_threshold_fires_after_duration_holds_and_clears_with_hysteresis(
    db_url: str, uid: str
) -> None:
    dev = f"aq-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality", name="Trạm Lộc Hạ")
        insert(conn, dev, "pm25", every(T0, MIN, [40] * 10 + [60] * 30 + [48] * 10 + [40] * 10))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 15 * MIN)
        assert alerts_of(conn, dev) == []  # above 50 for 5 min only: pending
        engine.evaluate(conn, rs, T0 + 25 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "open"
        assert alert.started_at == T0 + 10 * MIN
        assert alert.opened_at == T0 + 20 * MIN  # after 10 min above the threshold
        assert alert.title == "PM2.5 cao: Trạm Lộc Hạ"
        assert alert.severity == "warning"
        engine.evaluate(conn, rs, T0 + 48 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "open"  # 48 is inside the hysteresis band (clears at 45)
        assert alert.value == 48.0
        engine.evaluate(conn, rs, T0 + 60 * MIN)
        [alert] = alerts_of(conn, dev)
        assert (alert.state, alert.resolution, alert.resolved_by) == ("resolved", "auto", "system")
        assert [e for _, e in events_of(conn, dev)] == ["opened", "resolved"]


def test_restart_neither_repeats_nor_misses(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, MIN, [60] * 30))
        RuleEngine().evaluate(conn, rs, T0 + 5 * MIN)  # pending, then the process "dies"
        RuleEngine().evaluate(conn, rs, T0 + 12 * MIN)  # a new process continues the window
        [alert] = alerts_of(conn, dev)
        assert alert.opened_at == T0 + 10 * MIN
        before = events_of(conn, dev)
        for _ in range(3):  # the same data again and again: nothing new
            RuleEngine().evaluate(conn, rs, T0 + 12 * MIN)
            RuleEngine().evaluate(conn, rs, T0 + 29 * MIN)
        assert events_of(conn, dev) == before
        assert len(alerts_of(conn, dev)) == 1


def test_two_engines_at_once_open_one_alert(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, MIN, [60] * 30))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                barrier.wait(10)
                RuleEngine().evaluate(c, rs, T0 + 29 * MIN)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with psycopg.connect(db_url) as conn:
        assert len(alerts_of(conn, dev)) == 1
        assert [e for _, e in events_of(conn, dev)] == ["opened"]


def test_escalation_to_critical_and_back(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, MIN, [60] * 15 + [200] * 5 + [148] * 5 + [100] * 5))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 18 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.severity == "critical"
        alerts.acknowledge(conn, alert.id, "lan")
        engine.evaluate(conn, rs, T0 + 24 * MIN)  # 148: inside the critical hysteresis band
        assert alerts_of(conn, dev)[0].severity == "critical"
        engine.evaluate(conn, rs, T0 + 29 * MIN)
        [alert] = alerts_of(conn, dev)
        assert (alert.severity, alert.state) == ("warning", "acknowledged")
        assert [e for _, e in events_of(conn, dev)] == [
            "opened",
            "escalated",
            "acknowledged",
            "deescalated",
        ]


def test_flapping_becomes_one_muted_alert_then_resolves_when_stable(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "flap-{dev}"
        kind = "threshold"
        scope = {{ device = "{dev}" }}
        metric = "pm25"
        op = ">"
        value = 50
        flap_window = "30m"
        flap_transitions = 4
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        storm = [60 if i % 2 == 0 else 40 for i in range(40)]  # flips every minute
        insert(conn, dev, "pm25", every(T0, MIN, storm + [40] * 40))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 39 * MIN)
        found = alerts_of(conn, dev)
        assert len(found) == 2  # open, resolve, open, then flapping instead of resolving again
        assert found[0].state == "resolved"
        assert (found[1].state, found[1].flapping) == ("open", True)
        engine.evaluate(conn, rs, T0 + 79 * MIN)
        found = alerts_of(conn, dev)
        assert len(found) == 2
        assert (found[1].state, found[1].flapping) == ("resolved", False)
        events = events_of(conn, dev)
        notified = conn.execute(
            "SELECT e.event FROM alert_events AS e WHERE e.alert_id = %s AND e.notify"
            " ORDER BY e.id",
            (found[1].id,),
        ).fetchall()
    assert [e for _, e in events] == ["opened", "resolved", "opened", "flapping", "resolved"]
    assert [r[0] for r in notified] == ["opened", "flapping", "resolved"]


def test_manual_resolve_is_not_overridden_while_the_condition_holds(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(threshold_rule(dev))
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, MIN, [60] * 20 + [60] * 20 + [40] * 5 + [60] * 15))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 15 * MIN)
        [alert] = alerts_of(conn, dev)
        alerts.resolve(conn, alert.id, "lan", "đã xử lý")
        engine.evaluate(conn, rs, T0 + 40 * MIN)
        assert len(alerts_of(conn, dev)) == 1  # still above 50, but an operator closed it
        engine.evaluate(conn, rs, T0 + 59 * MIN)  # cleared once, then 15 min above again
        found = alerts_of(conn, dev)
        assert len(found) == 2
        assert found[1].state == "open"
        assert found[1].started_at == T0 + 45 * MIN


def test_scope_by_area_includes_sub_areas(db_url: str, uid: str) -> None:
    ward, coast = f"w-{uid}", f"c-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "area-{uid}"
        kind = "threshold"
        scope = {{ area = "tp-nam-dinh", kind = "air_quality" }}
        metric = "pm25"
        op = ">"
        value = 50
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, ward, "air_quality", area="tp-nam-dinh-vi-xuyen")
        add_device(conn, coast, "air_quality", area="hai-hau")
        for dev in (ward, coast):
            insert(conn, dev, "pm25", every(T0, MIN, [80] * 5))
        RuleEngine().evaluate(conn, rs, T0 + 5 * MIN)
        assert [a.area_id for a in alerts_of(conn, ward)] == ["tp-nam-dinh-vi-xuyen"]
        assert alerts_of(conn, coast) == []


def test_rate_of_change_river_rise(db_url: str, uid: str) -> None:
    dev = f"rv-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "rise-{uid}"
        kind = "rate"
        scope = {{ device = "{dev}" }}
        metric = "water_level"
        window = "15m"
        rise = 0.5
        critical = 1.0
        hysteresis = 0.1
        hold = "30m"
        """
    )
    five = 5 * MIN
    levels = [2.0 + 0.01 * i for i in range(12)]  # slow rise: 1 h
    levels += [levels[-1] + 0.25 * (i + 1) for i in range(3)]  # +0.75 m in 15 min
    levels += [levels[-1]] * 12  # flat for 1 h
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "river_gauge")
        insert(conn, dev, "water_level", every(T0, five, levels))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 60 * MIN)
        assert alerts_of(conn, dev) == []
        engine.evaluate(conn, rs, T0 + 70 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "open"
        assert alert.started_at == T0 + 65 * MIN  # +0.52 m over the 15 min to 08:05 local
        assert alert.value == pytest.approx(0.75)  # the latest rise
        engine.evaluate(conn, rs, T0 + 130 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "resolved"
        assert alert.resolved_at == T0 + 130 * MIN  # evaluation time


def test_spike_then_back_to_normal(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "spike-{uid}"
        kind = "spike"
        scope = {{ device = "{dev}" }}
        metric = "pm25"
        samples = 10
        mad_k = 5
        min_delta = 30
        hold = "5m"
        severity = "info"
        """
    )
    base = [20 + (i % 3) for i in range(20)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, MIN, [*base, 300, *base]))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 19 * MIN)
        assert alerts_of(conn, dev) == []  # ordinary wobble is no spike
        engine.evaluate(conn, rs, T0 + 21 * MIN)
        [alert] = alerts_of(conn, dev)
        assert (alert.state, alert.value, alert.severity) == ("open", 300.0, "info")
        engine.evaluate(conn, rs, T0 + 40 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "resolved"


def test_flatline_stuck_sensor(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "flat-{uid}"
        kind = "flatline"
        scope = {{ device = "{dev}" }}
        metric = "pm25"
        window = "2h"
        epsilon = 0.01
        min_samples = 6
        """
    )
    ten = 10 * MIN
    values = [15.0 + (i % 4) for i in range(6)] + [12.0] * 18 + [13.5, 14.0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm25", every(T0, ten, values))
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 170 * MIN)  # stuck from 60 min: 1 h 50 min so far
        assert alerts_of(conn, dev) == []
        engine.evaluate(conn, rs, T0 + 190 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "open"
        engine.evaluate(conn, rs, T0 + 250 * MIN)
        assert alerts_of(conn, dev)[0].state == "resolved"


def test_stale_then_offline_then_back(db_url: str, uid: str) -> None:
    dev = f"nz-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "stale-{uid}"
        kind = "stale"
        scope = {{ device = "{dev}" }}
        intervals = 3
        critical_intervals = 10
        interval_s = 60
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        # The device says it reports every 5 min: that, not the rule's 60 s, sets the pace.
        add_device(conn, dev, "noise", metadata={"interval_s": 300}, created_at=T0 - 60 * MIN)
        insert(conn, dev, "noise_laeq", [(T0, 60.0)])
        engine = RuleEngine()
        engine.evaluate(conn, rs, T0 + 14 * MIN)
        assert alerts_of(conn, dev) == []
        engine.evaluate(conn, rs, T0 + 16 * MIN)
        [alert] = alerts_of(conn, dev)
        assert (alert.metric, alert.severity) == ("*", "warning")
        engine.evaluate(conn, rs, T0 + 51 * MIN)
        assert alerts_of(conn, dev)[0].severity == "critical"
        insert(conn, dev, "noise_laeq", [(T0 + 52 * MIN, 61.0)])
        engine.evaluate(conn, rs, T0 + 53 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "resolved"
        assert [e for _, e in events_of(conn, dev)] == ["opened", "escalated", "resolved"]


def test_counter_reset(db_url: str, uid: str) -> None:
    dev = f"mt-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "reset-{uid}"
        kind = "counter_reset"
        scope = {{ device = "{dev}" }}
        jitter = 0.001
        severity = "info"
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "smart_meter")
        insert(conn, dev, "energy", every(T0, 15 * MIN, [100.0, 100.5, 100.5, 101.2, 0.3, 0.9]))
        RuleEngine().evaluate(conn, rs, T0 + 61 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.value == 0.3
        assert alert.details["previous"] == 101.2
        assert alert.state == "open"
        RuleEngine().evaluate(conn, rs, T0 + 80 * MIN)
        assert alerts_of(conn, dev)[0].state == "resolved"


def test_consistency_pm25_above_pm10(db_url: str, uid: str) -> None:
    dev = f"aq-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "cons-{uid}"
        kind = "consistency"
        scope = {{ device = "{dev}" }}
        margin = 2
        for = "10m"
        severity = "info"
        """
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "air_quality")
        insert(conn, dev, "pm10", every(T0, MIN, [30.0] * 35))
        insert(conn, dev, "pm25", every(T0, MIN, [20.0] * 10 + [31.0] * 10 + [45.0] * 15))
        RuleEngine().evaluate(conn, rs, T0 + 34 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.started_at == T0 + 20 * MIN  # 31 vs 30 is within the 2 µg/m³ margin
        assert alert.threshold == 30.0


def test_anomaly_against_the_same_hour_of_week(db_url: str, uid: str) -> None:
    dev = f"mt-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "anom-{uid}"
        kind = "anomaly"
        scope = {{ device = "{dev}" }}
        metric = "power"
        hours = ["00:00", "04:00"]
        z = 4
        window = "30m"
        baseline_weeks = 4
        min_baseline = 3
        direction = "above"
        min_spread = 10
        for = "10m"
        """
    )
    night = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # Tuesday 02:00 local
    history = []
    for week in range(1, 5):
        start = night - timedelta(days=7 * week) - timedelta(hours=2)
        history += every(start, 10 * MIN, [150 + week * 3 + (i % 2) * 5 for i in range(36)])
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "smart_meter")
        insert(conn, dev, "power", history)
        insert(conn, dev, "power", every(night, 5 * MIN, [160] * 6 + [900] * 12))
        engine = RuleEngine()
        engine.evaluate(conn, rs, night + 29 * MIN)
        assert alerts_of(conn, dev) == []  # 160 W is the usual night load
        engine.evaluate(conn, rs, night + 85 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.state == "open"
        assert alert.details["baseline_weeks"] == 4
        assert alert.threshold == pytest.approx(160, abs=10)  # the baseline median


def test_street_light_on_in_daylight(db_url: str, uid: str) -> None:
    dev = f"sl-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "lamp-{uid}"
        kind = "lamp_daylight"
        scope = {{ device = "{dev}" }}
        margin = "30m"
        for = "20m"
        severity = "info"
        """
    )
    evening = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)  # 18:30 local: sunset 18:04
    noon = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # 12:00 local next day
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "street_light")
        insert(conn, dev, "lamp_on", every(evening, 5 * MIN, [1] * 12))
        engine = RuleEngine(lookback=timedelta(days=1))
        engine.evaluate(conn, rs, evening + 60 * MIN)
        assert alerts_of(conn, dev) == []  # on after sunset: as it should be
        insert(conn, dev, "lamp_on", every(noon, 5 * MIN, [1] * 6 + [0] * 3))
        engine.evaluate(conn, rs, noon + 44 * MIN)
        [alert] = alerts_of(conn, dev)
        assert alert.opened_at == noon + 20 * MIN
        assert alert.state == "resolved"


def test_noise_over_qcvn26_by_area_type_day_and_night(db_url: str, uid: str) -> None:
    school = f"nz-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "noise-{uid}"
        kind = "noise"
        scope = {{ device = "{school}" }}
        window = "30m"
        hysteresis = 2
        """
    )
    day = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 14:00 local
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, school, "noise", metadata={"area_type": "special"})
        # 50 dBA all afternoon and evening: under the special area's day limit (55), over the
        # night one (45) from 21:00.
        insert(conn, school, "noise_laeq", every(day, 5 * MIN, [50.0] * 120))
        engine = RuleEngine(lookback=timedelta(days=1))
        engine.evaluate(conn, rs, day + 6 * 60 * MIN)  # 20:00 local
        assert alerts_of(conn, school) == []
        engine.evaluate(conn, rs, day + 8 * 60 * MIN)  # 22:00 local
        [alert] = alerts_of(conn, school)
        assert alert.opened_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 21:00 local
        assert alert.threshold == 45
        assert alert.details["period"] == "night"


def test_river_alarm_levels_escalate_and_resolve_below_level_one(db_url: str, uid: str) -> None:
    dev = f"rv-{uid}"
    rs = rules(
        f"""
        [[rule]]
        id = "flood-{uid}"
        kind = "river_alarm"
        scope = {{ device = "{dev}" }}
        hysteresis = 0.1
        """
    )
    stages = [3.0, 3.25, 3.5, 3.85, 4.35, 4.5, 4.25, 3.7, 3.15, 3.05]
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, dev, "river_gauge", metadata={"gauge": "nam_dinh"})
        insert(conn, dev, "water_level", every(T0, 60 * MIN, stages))
        engine = RuleEngine(lookback=timedelta(days=1))
        seen = []
        for hour in range(len(stages)):
            engine.evaluate(conn, rs, T0 + hour * 60 * MIN)
            found = alerts_of(conn, dev)
            seen.append(
                (found[-1].severity, found[-1].details.get("alarm_level"), found[-1].state)
                if found
                else None
            )
        [alert] = alerts_of(conn, dev)
        events = [e for _, e in events_of(conn, dev)]
    assert seen == [
        None,
        ("warning", 1, "open"),
        ("warning", 1, "open"),
        ("warning", 2, "open"),
        ("critical", 3, "open"),
        ("critical", 3, "open"),
        ("critical", 3, "open"),  # 4.25 is within 0.1 m of level III: still III
        ("warning", 2, "open"),
        ("warning", 1, "open"),  # 3.15 is within 0.1 m of level I
        ("warning", 1, "resolved"),  # 3.05 < 3.20 − 0.10
    ]
    assert events == ["opened", "escalated", "escalated", "deescalated", "deescalated", "resolved"]
    assert alert.details["river"] == "sông Đào"
