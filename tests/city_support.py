"""A small seeded city for the dashboard and portal tests: every device kind the dashboards and
the portal show, three days of readings every 10 minutes, rollups refreshed, the AQI and energy
jobs run, alerts opened and a few dead letters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from analytics.alerts import NewAlert, acknowledge, open_alert
from analytics.aqi_job import AqiJob
from analytics.energy_job import EnergyJob
from store import devices
from store.loader import load_batch
from store.rollups import refresh

STEP = timedelta(minutes=10)
DAYS = 3

# Three public stations in three VN_AQI categories (PM2.5 NowCast ≈ 20, 35, 60 µg/m³:
# Tốt, Trung bình, Kém), two river gauges (one with its own alarm levels, one by gauge id),
# a weather station, meters, a street light and rooftop solar (not public).
STATIONS = {"aq-dt-a": 60.0, "aq-dt-b": 20.0, "aq-dt-c": 35.0}
DEVICES = (
    devices.Device(
        "aq-dt-a", "air_quality", "Trạm Trần Hưng Đạo", "tp-nam-dinh-tran-hung-dao",
        20.4287, 106.1776, public=True,
    ),
    devices.Device(
        "aq-dt-b", "air_quality", "Trạm Nam Giang", "nam-truc-nam-giang",
        20.3376, 106.1791, public=True,
    ),
    devices.Device(
        "aq-dt-c", "air_quality", "Trạm Cổ Lễ", "truc-ninh-co-le", 20.3221, 106.2588, public=True,
    ),
    devices.Device(
        "rg-dt-dao", "river_gauge", "Trạm thủy văn Nam Định (sông Đào)", "tp-nam-dinh-nang-tinh",
        20.4098, 106.1858, public=True,
        metadata={"alarm_levels_m": {"I": 3.2, "II": 3.8, "III": 4.3}},
    ),
    devices.Device(
        "rg-dt-ninh-co", "river_gauge", "Trạm thủy văn Trực Phương", "truc-ninh-truc-phuong",
        20.2262, 106.2171, public=True, metadata={"gauge": "truc_phuong"},
    ),
    devices.Device(
        "wx-dt-1", "weather", "Trạm đo mưa Yên Định", "hai-hau-yen-dinh", 20.18, 106.275,
        public=True,
    ),
    devices.Device("ct-dt-1", "smart_meter", "Công tơ 1", "tp-nam-dinh-loc-ha", 20.442, 106.18),
    devices.Device("ct-dt-2", "smart_meter", "Công tơ 2", "hai-hau-yen-dinh", 20.18, 106.275),
    devices.Device("den-dt-1", "street_light", "Đèn 1", "tp-nam-dinh-loc-ha", 20.443, 106.181),
    devices.Device("pv-dt-1", "solar", "Điện mặt trời 1", "tp-nam-dinh-loc-ha", 20.441, 106.179),
)  # fmt: skip


@dataclass(frozen=True)
class SeededCity:
    """What :func:`seed_city` made."""

    now: datetime
    alert_ids: dict[str, int]


def _local_hour(t: datetime) -> int:
    return (t.hour + 7) % 24


def _rows(now: datetime) -> list[tuple[str, str, datetime, float, int]]:
    rows: list[tuple[str, str, datetime, float, int]] = []
    start = now - timedelta(days=DAYS)
    n = int((now - start) / STEP) + 1
    energy = {"ct-dt-1": 100.0, "ct-dt-2": 5000.0, "den-dt-1": 10.0, "pv-dt-1": 50.0}
    for i in range(n):
        t = start + i * STEP
        wave = math.sin(i / 12)
        for station, pm in STATIONS.items():
            rows.append((station, "pm25", t, pm + wave, 1))
            rows.append((station, "pm10", t, pm * 1.6 + wave, 1))
            # aq-dt-a: a NO2 episode 8–11 h ago, above the QCVN 05 1 h limit of 200 µg/m³.
            spike = station == "aq-dt-a" and timedelta(hours=8) < now - t <= timedelta(hours=11)
            rows.append((station, "no2", t, 250.0 if spike else 35.0 + 5 * wave, 1))
            rows.append((station, "o3", t, 60.0 + 10 * wave, 1))
            rows.append((station, "so2", t, 15.0, 1))
            rows.append((station, "co", t, 900.0 + 50 * wave, 1))
        # The sông Đào rises through BĐ I and II; the Ninh Cơ stays below BĐ I.
        rows.append(("rg-dt-dao", "water_level", t, 2.9 + 0.95 * i / n, 1))
        rows.append(("rg-dt-ninh-co", "water_level", t, 1.5 + 0.3 * wave, 1))
        rows.append(("wx-dt-1", "rainfall", t, max(0.0, 4 * wave), 1))
        night = not 6 <= _local_hour(t) < 18
        for meter in ("ct-dt-1", "ct-dt-2"):
            # ct-dt-2's counter restarts from 0 half-way (a meter replacement).
            if meter == "ct-dt-2" and i == n // 2:
                energy[meter] = 0.0
            energy[meter] += 0.2
            rows.append((meter, "energy", t, energy[meter], 1))
            rows.append((meter, "power", t, 1200.0 + 100 * wave, 1))
        energy["den-dt-1"] += 0.015 if night else 0.0
        rows.append(("den-dt-1", "lamp_on", t, 1.0 if night else 0.0, 1))
        rows.append(("den-dt-1", "power", t, 90.0 if night else 0.0, 1))
        rows.append(("den-dt-1", "energy", t, energy["den-dt-1"], 1))
        sun = max(0.0, math.sin(math.pi * (_local_hour(t) - 6) / 12))
        energy["pv-dt-1"] += 0.5 * sun
        rows.append(("pv-dt-1", "power", t, 3000.0 * sun, 1))
        rows.append(("pv-dt-1", "energy", t, energy["pv-dt-1"], 1))
    return rows


def _alert(
    device: str, rule: str, kind: str, metric: str, *, severity: Any, title: str
) -> NewAlert:
    t = datetime.now(UTC) - timedelta(hours=2)
    return NewAlert(rule, kind, device, metric, severity, title, f"{title} (seeded)", t, t, 1.0)


def seed_city(url: str) -> SeededCity:
    """Seed the database at ``url`` (a fresh migrated one); idempotent it is not."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(url) as conn:
        with conn.transaction():
            devices.upsert(conn, list(DEVICES))
        load_batch(conn, _rows(now))
    with psycopg.connect(url, autocommit=True) as conn:
        refresh(conn)
        AqiJob().run(conn, datetime.now(UTC))
        EnergyJob().run(conn, datetime.now(UTC))
        ids: dict[str, int] = {}
        specs = {
            "flood": _alert(
                "rg-dt-dao", "river-alarm", "river_alarm", "water_level", severity="warning",
                title="Cảnh báo lũ – Trạm thủy văn Nam Định (sông Đào)",
            ),
            "air": _alert(
                "aq-dt-a", "aqi-poor", "aqi_category", "aqi", severity="critical",
                title="Không khí kém – Trạm Trần Hưng Đạo",
            ),
            "lamp": _alert(
                "den-dt-1", "lights-in-daylight", "lamp_daylight", "lamp_on", severity="info",
                title="Đèn sáng ban ngày – Đèn 1",
            ),
            "meter": _alert(
                "ct-dt-2", "meter-reset", "counter_reset", "energy", severity="warning",
                title="Công tơ bị đặt lại – Công tơ 2",
            ),
        }  # fmt: skip
        for name, spec in specs.items():
            alert = open_alert(conn, spec)
            assert alert is not None
            ids[name] = alert.id
        acknowledge(conn, ids["meter"], "seed", "đã cử kỹ thuật viên")
        conn.execute(
            "INSERT INTO dead_letters (topic, payload, reason, detail, device_id, received_at)"
            " SELECT 'dothi/v1/devices/x/up', '\\x7b'::bytea, r, 'seeded', 'x',"
            " now() - g * interval '20 minutes'"
            " FROM unnest(ARRAY['bad_json', 'unknown_metric', 'bad_json']) WITH ORDINALITY"
            " AS u (r, g)"
        )
    return SeededCity(now, ids)
