"""The alert lifecycle against the real database: transitions, invalid ones, history, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics import alerts
from analytics.alerts import AlertInputError, AlertNotFound, AlertStateError, NewAlert

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def new_alert(uid: str, device: str = "aq-1", **overrides: object) -> NewAlert:
    values: dict[str, object] = {
        "rule_id": f"r-{uid}",
        "kind": "threshold",
        "device_id": f"{device}-{uid}",
        "metric": "pm25",
        "severity": "warning",
        "title": "PM2.5 high",
        "message": "PM2.5 62 µg/m³ > 50",
        "started_at": T0,
        "opened_at": T0 + timedelta(minutes=10),
        "value": 62.0,
        "threshold": 50.0,
    }
    values.update(overrides)
    return NewAlert(**values)  # type: ignore[arg-type]


def add_device(conn: psycopg.Connection[tuple[object, ...]], device: str, area: str) -> None:
    conn.execute(
        "INSERT INTO devices (id, kind, area_id) VALUES (%s, 'air_quality', %s)"
        " ON CONFLICT (id) DO NOTHING",
        (device, area),
    )


def test_open_ack_resolve_with_history(db_url: str, uid: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_device(conn, f"aq-1-{uid}", "tp-nam-dinh-loc-ha")
        alert = alerts.open_alert(conn, new_alert(uid))
        assert alert is not None
        assert alert.state == "open"
        assert alert.area_id == "tp-nam-dinh-loc-ha"  # taken from the device
        acked = alerts.acknowledge(conn, alert.id, "lan", "đang kiểm tra")
        assert acked.state == "acknowledged"
        assert acked.acknowledged_by == "lan"
        alerts.comment(conn, alert.id, "lan", "quạt cảm biến bị bẩn")
        done = alerts.resolve(conn, alert.id, "minh", "đã vệ sinh cảm biến")
        assert done.state == "resolved"
        assert done.resolved_by == "minh"
        assert done.resolution == "manual"
        alerts.comment(conn, alert.id, "lan", "kiểm tra lại ngày mai")  # allowed when resolved
        events = alerts.history(conn, alert.id)
    assert [(e.event, e.actor, e.from_state, e.to_state) for e in events] == [
        ("opened", "system", None, "open"),
        ("acknowledged", "lan", "open", "acknowledged"),
        ("commented", "lan", "acknowledged", "acknowledged"),
        ("resolved", "minh", "acknowledged", "resolved"),
        ("commented", "lan", "resolved", "resolved"),
    ]
    assert events[1].comment == "đang kiểm tra"
    assert events[3].comment == "đã vệ sinh cảm biến"


def test_invalid_transitions_raise_typed_errors(db_url: str, uid: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        alert = alerts.open_alert(conn, new_alert(uid))
        assert alert is not None
        alerts.acknowledge(conn, alert.id, "lan")
        with pytest.raises(AlertStateError, match=r"cannot be acknowledged: it is acknowledged"):
            alerts.acknowledge(conn, alert.id, "minh")
        alerts.resolve(conn, alert.id, "lan")
        with pytest.raises(AlertStateError, match=r"it is resolved \(by lan"):
            alerts.resolve(conn, alert.id, "minh")
        with pytest.raises(AlertStateError) as exc:
            alerts.acknowledge(conn, alert.id, "minh")
        assert exc.value.state == "resolved"
        assert exc.value.action == "acknowledge"
        with pytest.raises(AlertNotFound, match="alert 999999999 does not exist"):
            alerts.acknowledge(conn, 999_999_999, "lan")
        with pytest.raises(AlertNotFound):
            alerts.history(conn, 999_999_999)
        with pytest.raises(AlertNotFound):
            alerts.comment(conn, 999_999_999, "lan", "x")
        with pytest.raises(AlertInputError, match="actor"):
            alerts.resolve(conn, alert.id, "  ")
        with pytest.raises(AlertInputError, match="needs text"):
            alerts.comment(conn, alert.id, "lan", " ")
        # Failed attempts leave no trace in the history.
        assert [e.event for e in alerts.history(conn, alert.id)] == [
            "opened",
            "acknowledged",
            "resolved",
        ]


def test_one_unresolved_alert_per_rule_device_metric(db_url: str, uid: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        first = alerts.open_alert(conn, new_alert(uid))
        assert first is not None
        assert alerts.open_alert(conn, new_alert(uid)) is None
        other_metric = alerts.open_alert(conn, new_alert(uid, metric="pm10"))
        assert other_metric is not None
        alerts.resolve(conn, first.id, "lan")
        again = alerts.open_alert(conn, new_alert(uid))
        assert again is not None
        assert again.id != first.id
        # The index itself refuses a second unresolved row, whoever writes it.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO alerts (rule_id, kind, device_id, metric, severity, state, title,"
                " message, started_at, opened_at) SELECT rule_id, kind, device_id, metric,"
                " severity, 'open', title, message, started_at, opened_at FROM alerts"
                " WHERE id = %s",
                (again.id,),
            )


def test_escalation_reopens_an_acknowledged_alert(db_url: str, uid: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        alert = alerts.open_alert(conn, new_alert(uid))
        assert alert is not None
        alerts.acknowledge(conn, alert.id, "lan")
        up = alerts.escalate(conn, alert.id, "critical", message="PM2.5 160", value=160.0)
        assert (up.severity, up.state, up.acknowledged_by) == ("critical", "open", None)
        alerts.acknowledge(conn, alert.id, "lan")
        down = alerts.escalate(conn, alert.id, "warning", message="PM2.5 70", value=70.0)
        assert (down.severity, down.state) == ("warning", "acknowledged")
        events = [(e.event, e.severity) for e in alerts.history(conn, alert.id)]
    assert events == [
        ("opened", "warning"),
        ("acknowledged", "warning"),
        ("escalated", "critical"),
        ("acknowledged", "critical"),
        ("deescalated", "warning"),
    ]


def test_auto_resolve_after_manual_resolve_is_a_no_op(db_url: str, uid: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        alert = alerts.open_alert(conn, new_alert(uid))
        assert alert is not None
        alerts.resolve(conn, alert.id, "lan")
        assert alerts.auto_resolve(conn, alert.id) is None


def test_list_filters_and_pagination(fresh_db_url: str, uid: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        add_device(conn, f"city-{uid}", "tp-nam-dinh-vi-xuyen")  # a ward of the city
        add_device(conn, f"coast-{uid}", "hai-hau")
        a = alerts.open_alert(conn, new_alert(uid, device="city"))
        b = alerts.open_alert(conn, new_alert(uid, device="coast", severity="critical"))
        assert a is not None
        assert b is not None
        alerts.acknowledge(conn, a.id, "lan")
        in_city = alerts.list_alerts(conn, area_id="tp-nam-dinh")
        assert [x.id for x in in_city] == [a.id]  # wards count as part of the city
        province = alerts.list_alerts(conn, area_id="nam-dinh", device_id=f"coast-{uid}")
        assert [x.id for x in province] == [b.id]
        critical = alerts.list_alerts(conn, severity="critical", device_id=f"coast-{uid}")
        assert [x.id for x in critical] == [b.id]
        acked = alerts.list_alerts(conn, state="acknowledged", device_id=f"city-{uid}")
        assert [x.id for x in acked] == [a.id]
        active = alerts.list_alerts(conn, state=("open", "acknowledged"), area_id="nam-dinh")
        assert {a.id, b.id} <= {x.id for x in active}
        page1 = alerts.list_alerts(conn, area_id="nam-dinh", limit=1)
        page2 = alerts.list_alerts(conn, area_id="nam-dinh", limit=1, before_id=page1[0].id)
        assert page1[0].id > page2[0].id
        with pytest.raises(AlertInputError, match="unknown state"):
            alerts.list_alerts(conn, state="closed")  # type: ignore[arg-type]
        with pytest.raises(AlertInputError, match="limit"):
            alerts.list_alerts(conn, limit=0)
    assert a.as_json()["opened_at"] == (T0 + timedelta(minutes=10)).isoformat()
