"""The simulated city without a broker: city file, signal shapes, scenarios, faults, payloads.

Signals are pure functions of (device, time, seed, scenario), so these tests ask for values at
chosen instants instead of running clocks. What goes over MQTT is in test_simulators_mqtt.py.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.metrics import METRICS, QUALITY_PASS, normalise, resolve
from simulators import energy, faults, payloads, profiles, schedule, signals
from simulators.city import (
    DEVICE_ID_RE,
    KINDS,
    CityError,
    DeviceSpec,
    load_city,
)
from simulators.cli import main
from simulators.environment import Environment
from simulators.faults import FaultPlan
from simulators.load import LOAD_METRICS, encode
from simulators.scenarios import Scenario, ScenarioError
from simulators.stream import Generator, Message

ROOT = Path(__file__).resolve().parents[1]
CITY = load_city()
HOUR = 3600.0
DAY = 86400.0


def utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def series(
    device_id: str, t: np.ndarray, *, seed: int = 0, scenario: Scenario | None = None
) -> dict[str, np.ndarray]:
    env = Environment(CITY, seed, scenario, float(t.min()), float(t.max()))
    return signals.sample(CITY.device(device_id), t, env)


def month_grid(year: int, month: int, days: int = 28, step: float = 600.0) -> np.ndarray:
    t0 = utc(year, month, 1)
    return np.arange(t0, t0 + days * DAY, step)


def local_hours(t: np.ndarray) -> np.ndarray:
    return profiles.local_hour(t)


# -- the city file ------------------------------------------------------------------------------
def test_default_city_has_a_few_hundred_devices_of_every_kind() -> None:
    kinds = Counter(d.kind for d in CITY.devices)
    assert 200 <= len(CITY.devices) <= 500
    assert set(kinds) == set(KINDS)
    assert kinds["smart_meter"] > kinds["street_light"] > kinds["solar"] > kinds["river_gauge"]
    formats = Counter(d.format for d in CITY.devices)
    assert set(formats) == {"native", "senml", "chirpstack", "tts", "tasmota"}


def test_device_ids_areas_and_coordinates_are_valid() -> None:
    with (ROOT / "store" / "data" / "areas_nam_dinh.csv").open(encoding="utf-8") as f:
        known_areas = {row["id"] for row in csv.DictReader(f)}
    ids = [d.id for d in CITY.devices]
    assert len(ids) == len(set(ids))
    for d in CITY.devices:
        if d.format == "chirpstack":
            assert re.fullmatch(r"[0-9a-f]{16}", d.id), d.id
        else:
            assert DEVICE_ID_RE.fullmatch(d.id), d.id
        assert d.area_id in known_areas, d.area_id
        assert 19.9 < d.lat < 20.6
        assert 105.9 < d.lon < 106.6
        assert isinstance(d.lat, float)
        assert isinstance(d.lon, float)
        assert d.interval_s > 0
        assert d.metrics
        assert all(m in METRICS for m in d.metrics)
        assert d.public == (d.kind in ("air_quality", "noise", "weather", "river_gauge"))
    assert set(CITY.areas) <= known_areas


def test_gauges_noise_and_meters_carry_their_metadata() -> None:
    dao = CITY.device("rg-song-dao-nam-dinh")
    assert dao.metadata["alarm_levels_m"] == {"I": 3.2, "II": 3.8, "III": 4.3}
    ninh_co = CITY.device("rg-ninh-co-truc-phuong")
    assert ninh_co.area_id == "truc-ninh-truc-phuong"
    assert ninh_co.metadata["alarm_levels_m"] == {"I": 2.0, "II": 2.3, "III": 2.6}
    noise = [d for d in CITY.devices if d.kind == "noise"]
    types = {str(d.metadata["area_type"]) for d in noise}
    assert types == {"special", "normal"}
    for d in noise:
        day_limit = d.metadata["limit_day_dba"]
        assert day_limit == (55 if d.metadata["area_type"] == "special" else 70)
    meter = next(d for d in CITY.devices if d.kind == "smart_meter")
    assert meter.metadata["rated_power_w"] == 8800
    assert 0.45 <= float(meter.metadata["household_factor"]) <= 1.25  # type: ignore[arg-type]


def test_scaling_to_ten_thousand_devices_is_exact_and_deterministic() -> None:
    big = load_city(devices=10_000, seed=3)
    again = load_city(devices=10_000, seed=3)
    assert len(big.devices) == 10_000
    assert [d.id for d in big.devices] == [d.id for d in again.devices]
    assert big.devices == again.devices
    assert len({d.id for d in big.devices}) == 10_000
    assert [d.id for d in big.devices[: len(CITY.devices)]] == [d.id for d in CITY.devices]
    kinds = Counter(d.kind for d in big.devices)
    assert kinds["smart_meter"] > 6000
    assert all(len(d.id) <= 41 for d in big.devices)
    # Replicas spread over many areas, not piled into one.
    assert len({d.area_id for d in big.devices if d.kind == "smart_meter"}) >= 30


def test_fewer_devices_keeps_the_first_ones_and_the_seed_moves_only_coordinates() -> None:
    small = load_city(devices=40)
    assert [d.id for d in small.devices] == [d.id for d in CITY.devices[:40]]
    other = load_city(seed=9)
    assert [d.id for d in other.devices] == [d.id for d in CITY.devices]
    moved = [a for a, b in zip(CITY.devices, other.devices, strict=True) if a.lat != b.lat]
    assert moved
    assert all(d.kind in ("smart_meter", "street_light", "solar") for d in moved)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (('id = "aq-tran-hung-dao"', 'id = "AQ Trần"'), "must match"),
        (('area_id = "tp-nam-dinh-vi-xuyen"', 'area_id = "ha-noi"'), "not in the file"),
        (("faults = { pm-inversion = 0.03 }", "faults = { gremlins = 1 }"), "unknown fault"),
        (('format = "tts"', 'format = "zigbee"'), "unknown format"),
        (("version = 1", "version = 7"), "unsupported city file version"),
    ],
)
def test_bad_city_files_are_refused_with_the_entry(
    tmp_path: Path, patch: tuple[str, str], message: str
) -> None:
    text = (ROOT / "simulators" / "data" / "nam_dinh_city.toml").read_text(encoding="utf-8")
    assert patch[0] in text
    bad = tmp_path / "city.toml"
    bad.write_text(text.replace(patch[0], patch[1], 1), encoding="utf-8")
    with pytest.raises(CityError, match=message):
        load_city(bad)


def test_unreadable_or_invalid_toml_is_a_city_error(tmp_path: Path) -> None:
    with pytest.raises(CityError, match="cannot read"):
        load_city(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[devices]\nid=", encoding="utf-8")
    with pytest.raises(CityError, match="not valid TOML"):
        load_city(broken)


# -- daily and seasonal shapes ------------------------------------------------------------------
def test_pm25_peaks_at_night_and_morning_and_winter_is_about_three_times_summer() -> None:
    jan = month_grid(2026, 1)
    pm = series("aq-tran-hung-dao", jan)["pm25"]
    h = local_hours(jan)
    assert pm[(h >= 2) & (h < 8)].mean() > 1.3 * pm[(h >= 14) & (h < 15)].mean()
    jul = month_grid(2026, 7)
    summer = series("aq-tran-hung-dao", jul)["pm25"].mean()
    assert 2.0 < pm.mean() / summer < 4.5


def test_no2_rush_hours_and_afternoon_ozone() -> None:
    t = month_grid(2026, 3)
    v = series("aq-tran-hung-dao", t)
    h = local_hours(t)
    rush = v["no2"][((h >= 7) & (h < 9)) | ((h >= 17) & (h < 19))].mean()
    assert rush > 1.5 * v["no2"][(h >= 2) & (h < 4)].mean()
    o3 = v["o3"]
    assert o3[(h >= 13) & (h < 16)].mean() > 2.5 * o3[(h >= 0) & (h < 5)].mean()


def test_temperature_follows_the_month_table_and_the_day_model() -> None:
    for month, mean in ((1, 16.5), (7, 29.3)):
        t = month_grid(2026, month)
        temp = series("wx-nam-dinh", t)["temperature"]
        assert abs(temp.mean() - mean) < 2.0
        h = np.floor(local_hours(t)).astype(int)
        by_hour = np.array([temp[h == i].mean() for i in range(24)])
        assert int(np.argmin(by_hour)) in (4, 5, 6)
        assert int(np.argmax(by_hour)) in (13, 14, 15)
        assert 4.0 < by_hour.max() - by_hour.min() < 8.5


def test_noise_special_areas_are_quieter_and_nights_quieter_than_days() -> None:
    t = month_grid(2026, 4, days=14)
    h = local_hours(t)
    day = (h >= 6) & (h < 21)
    hospital = series("noise-bv-da-khoa-tinh", t)["noise_laeq"]
    road = series("noise-nga-tu-hang-thao", t)["noise_laeq"]
    assert hospital[day].mean() < road[day].mean() - 8
    assert hospital[~day].mean() < hospital[day].mean()
    assert hospital[day].mean() < 55 < road[day].mean() < 70


def test_street_lights_are_on_only_at_night_and_dimmed_after_22() -> None:
    lamp = next(d for d in CITY.devices if d.kind == "street_light")
    for month in (1, 6):
        t = month_grid(2026, month, days=7, step=300)
        v = series(lamp.id, t)
        h = local_hours(t)
        rise, sets = profiles.sun_times(profiles.local_day(t))
        night = (h >= sets + 10 / 60) | (h < rise - 10 / 60)
        assert np.array_equal(v["lamp_on"] == 1, night)
        assert set(v["dimming"][~night]) == {0.0}
        assert set(v["dimming"][night & ((h >= 22) | (h < 6))]) == {50.0}
        assert set(v["dimming"][night & (h >= 19) & (h < 22)]) == {100.0}
        assert (v["power"][~night] < 2).all()


def test_energy_counters_are_monotonic_and_match_power() -> None:
    t = np.arange(utc(2026, 6, 1), utc(2026, 6, 8), 300.0)
    for kind in ("smart_meter", "street_light", "solar"):
        for d in [d for d in CITY.devices if d.kind == kind][:5]:
            v = series(d.id, t)
            assert (np.diff(v["energy"]) >= 0).all(), d.id
            # Over the week the counter grows by the integral of the reported power (±15 %).
            kwh = v["energy"][-1] - v["energy"][0]
            assert kwh == pytest.approx(v["power"][:-1].sum() * 300 / 3.6e6, rel=0.15), d.id


def test_solar_is_zero_at_night_and_produces_at_noon() -> None:
    pv = next(d for d in CITY.devices if d.kind == "solar")
    t = month_grid(2026, 5, days=10, step=300)
    v = series(pv.id, t)
    h = local_hours(t)
    rise, sets = profiles.sun_times(profiles.local_day(t))
    assert (v["power"][(h < rise) | (h > sets)] == 0).all()
    assert (v["power"][(h > 11) & (h < 13)] > 0).all()
    assert np.diff(v["energy"][(h < rise - 0.1) | (h > sets + 0.1)]).min() >= 0


def test_every_value_stays_inside_the_registry_plausible_range() -> None:
    for month in (1, 4, 8, 11):
        t = np.arange(utc(2026, month, 3), utc(2026, month, 6), 900.0)
        env = Environment(CITY, 0, None, float(t[0]), float(t[-1]))
        for d in CITY.devices[::3]:
            for metric, v in signals.sample(d, t, env).items():
                lo, hi = METRICS[metric].reject
                assert v.min() >= lo, (d.id, metric, v.min())
                assert v.max() <= hi, (d.id, metric, v.max())


def test_weather_coupling_rain_washes_pm_and_raises_rivers() -> None:
    t = np.arange(utc(2026, 6, 1), utc(2026, 9, 1), 1800.0)
    env = Environment(CITY, 0, None, float(t[0]), float(t[-1]))
    area = "tp-nam-dinh-tran-hung-dao"
    rain = env.recent_rain(area, t)
    pm = env.pm25(area, t)
    wet = rain > 5
    assert wet.any()
    assert pm[wet].mean() < 0.7 * pm[~wet].mean()
    level = signals.sample(CITY.device("rg-song-dao-nam-dinh"), t, env)["water_level"]
    basin = env.basin_rain(t)
    assert np.corrcoef(basin, level)[0, 1] > 0.4
    # The river answers rain with a delay: yesterday's rain explains today's level better.
    lag = int(DAY / 1800)
    now_rain = env.rain(area, t)
    assert np.corrcoef(now_rain[:-lag], level[lag:])[0, 1] > np.corrcoef(now_rain, level)[0, 1]


def test_stations_in_one_area_move_together() -> None:
    t = month_grid(2026, 12, days=20, step=1800)
    city = series("aq-tran-hung-dao", t)["pm25"]
    ward_next_door = series("aq-vi-xuyen", t)["pm25"]
    coast = series("aq-thinh-long", t)["pm25"]
    near = np.corrcoef(city, ward_next_door)[0, 1]
    assert near > 0.8
    assert near > np.corrcoef(city, coast)[0, 1]


# -- scenarios ----------------------------------------------------------------------------------
def test_flood_climbs_through_alarm_levels_then_recedes() -> None:
    start = utc(2026, 9, 10, 0)
    flood = Scenario.bind("flood", CITY, 0, start)
    t = np.arange(start - 6 * HOUR, flood.end + 6 * HOUR, 300.0)
    level = series("rg-song-dao-nam-dinh", t, scenario=flood)["water_level"]
    crossed = [float(t[np.argmax(level >= x)]) for x in (3.2, 3.8, 4.3)]
    assert all(level[t < start] < 3.2)
    assert crossed == sorted(crossed)
    assert crossed[0] > start
    assert level.max() >= 4.3
    assert level[-1] < 3.2
    ninh_co = series("rg-ninh-co-truc-phuong", t, scenario=flood)["water_level"]
    assert ninh_co.max() >= 2.6
    wx = series("wx-nam-dinh", t, scenario=flood)
    first_hours = (t >= start) & (t < start + 12 * HOUR)
    assert wx["rainfall"][first_hours].max() > 25
    assert wx["pressure"][first_hours].min() < wx["pressure"][t < start].min() - 5


def _nowcast_aqi(hourly: list[float]) -> int:
    """VN_AQI of PM2.5 from the last 12 hourly means (newest last), QĐ 1459."""
    c = list(reversed(hourly[-12:]))
    w = max(min(c) / max(c), 0.5)
    nowcast = sum(w**i * x for i, x in enumerate(c)) / sum(w**i for i in range(len(c)))
    bp = [0, 25, 50, 80, 150, 250, 350, 500]
    index = [0, 50, 100, 150, 200, 300, 400, 500]
    for i in range(len(bp) - 1):
        if nowcast <= bp[i + 1]:
            aqi = (index[i + 1] - index[i]) / (bp[i + 1] - bp[i]) * (nowcast - bp[i]) + index[i]
            return math.floor(aqi + 0.5)
    return 500


def test_pollution_episode_reaches_vn_aqi_xau_at_the_city_station() -> None:
    start = utc(2026, 11, 20, 12)
    episode = Scenario.bind("pollution-episode", CITY, 0, start)
    t = np.arange(start - 24 * HOUR, start + 30 * HOUR, 60.0)
    pm = series("aq-tran-hung-dao", t, scenario=episode)["pm25"]
    hourly = [float(pm[i : i + 60].mean()) for i in range(0, pm.size, 60)]
    plateau_end = 24 + 6 + 18  # hours from the start of the series
    aqi = [_nowcast_aqi(hourly[: i + 1]) for i in range(24 + 12, plateau_end)]
    assert all(151 <= a <= 200 for a in aqi), aqi
    assert np.mean(hourly[:24]) < 0.8 * np.mean(hourly[24 + 6 : plateau_end])


def test_streetlight_fault_keeps_lamps_on_at_noon_and_costs_energy() -> None:
    start = utc(2026, 3, 10, 0)
    fault = Scenario.bind("streetlight-fault", CITY, 0, start)
    assert fault.affected
    noon = np.array([utc(2026, 3, 10, 5), utc(2026, 3, 10, 6)])  # 12:00 and 13:00 local
    for d in (d for d in CITY.devices if d.kind == "street_light"):
        v = series(d.id, noon, scenario=fault)
        assert list(v["lamp_on"]) == ([1.0, 1.0] if d.id in fault.affected else [0.0, 0.0])
    stuck = CITY.device(min(fault.affected))
    t = np.array([start, fault.end])
    normal = series(stuck.id, t)["energy"]
    faulty = series(stuck.id, t, scenario=fault)["energy"]
    assert np.diff(faulty)[0] > np.diff(normal)[0] * 1.5


def test_meter_tamper_registers_less_energy_than_the_power_says() -> None:
    start = utc(2026, 8, 1, 0)
    tamper = Scenario.bind("meter-tamper", CITY, 0, start)
    assert len(tamper.affected) >= 2
    t = np.arange(start, start + DAY, 300.0)
    for meter_id in sorted(tamper.affected)[:3]:
        v = series(meter_id, t, scenario=tamper)
        registered = v["energy"][-1] - v["energy"][0]
        flowed = v["power"][:-1].sum() * 300 / 3.6e6
        assert registered < 0.4 * flowed
    honest = next(
        d for d in CITY.devices if d.kind == "smart_meter" and d.id not in tamper.affected
    )
    v = series(honest.id, t, scenario=tamper)
    assert v["energy"][-1] - v["energy"][0] == pytest.approx(
        v["power"][:-1].sum() * 300 / 3.6e6, rel=0.2
    )


def test_sensor_outage_silences_an_area_then_it_comes_back() -> None:
    start = utc(2026, 5, 1, 3)
    outage = Scenario.bind("sensor-outage", CITY, 0, start)
    gen = Generator(CITY, CITY.devices, scenario=outage)
    silent = {d.id for d in CITY.devices if d.area_id.startswith("hai-hau")}
    assert silent
    assert outage.affected == silent
    during = gen.window(start, start + 2 * HOUR)
    after = gen.window(outage.end, outage.end + 2 * HOUR)
    assert not {m.device_id for m in during} & silent
    assert {m.device_id for m in after} >= silent
    assert {m.device_id for m in during} - silent


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario"):
        Scenario.bind("earthquake", CITY, 0, 0.0)


# -- determinism --------------------------------------------------------------------------------
def _payloads(msgs: list[Message]) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in msgs]


def test_same_seed_same_bytes_and_windows_do_not_matter() -> None:
    t0 = utc(2026, 10, 3, 0)
    plan = FaultPlan(faults.parse_faults("all", 0.05), CITY.device_faults, seed=4)
    devices = CITY.devices[::4]
    one = Generator(CITY, devices, 4, None, plan).window(t0, t0 + 2 * HOUR)
    again = Generator(CITY, devices, 4, None, plan).window(t0, t0 + 2 * HOUR)
    assert _payloads(one) == _payloads(again)
    gen = Generator(CITY, devices, 4, None, plan)
    split = gen.window(t0, t0 + 0.7 * HOUR) + gen.window(t0 + 0.7 * HOUR, t0 + 2 * HOUR)
    # Late/out-of-order messages may be due in the other window; the set of messages is equal.
    assert sorted(_payloads(one)) == sorted(_payloads(split))
    other = Generator(CITY, devices, 5, None, plan).window(t0, t0 + 2 * HOUR)
    assert _payloads(other) != _payloads(one)


def test_print_mode_is_byte_identical_between_runs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--from", "2026-02-01T08:00", "--to", "2026-02-01T08:20", "--print", "--seed", "7"]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert main(argv) == 0
    second = capsys.readouterr()
    assert first.out == second.out
    assert first.out.count("\n") > 100
    summary = json.loads(first.err.strip().splitlines()[-1])
    assert summary["messages_sent"] == first.out.count("\n")


# -- payload formats ----------------------------------------------------------------------------
def _window(devices: list[DeviceSpec], batch: int = 1) -> list[Message]:
    t0 = utc(2026, 11, 20, 10)
    return Generator(CITY, devices, 0, None, FaultPlan(), batch=batch).window(t0, t0 + HOUR)


def _of_format(fmt: str) -> list[DeviceSpec]:
    return [d for d in CITY.devices if d.format == fmt]


RFC3339_S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_native_payloads() -> None:
    devices = _of_format("native")
    for m in _window(devices):
        assert m.topic == f"dothi/v1/devices/{m.device_id}/up"
        doc = json.loads(m.payload)
        assert set(doc) == {"ts", "seq", "readings"}
        assert RFC3339_S.match(doc["ts"])
        assert isinstance(doc["seq"], int)
        assert set(doc["readings"]) == set(CITY.device(m.device_id).metrics)
    batch = _window(devices, batch=10)
    docs = [json.loads(m.payload) for m in batch]
    arrays = [d for d in docs if isinstance(d, list)]
    assert arrays
    assert all(len(a) <= 10 for a in arrays)
    for a in arrays:
        stamps = [x["ts"] for x in a]
        assert stamps == sorted(stamps)
        assert [x["seq"] for x in a] == list(range(a[0]["seq"], a[0]["seq"] + len(a)))


def test_senml_payloads_follow_rfc_8428() -> None:
    for m in _window(_of_format("senml"), batch=5):
        records = json.loads(m.payload)
        first = records[0]
        assert re.fullmatch(r"urn:dev:mac:[0-9a-f]{16}:", first["bn"])
        assert isinstance(first["bt"], int)
        assert first["bt"] >= 2**28
        for rec in records:
            assert set(rec) <= {"bn", "bt", "n", "u", "v", "vb", "t", "ut"}
            assert ("v" in rec) != ("vb" in rec)
            metric = resolve(rec["n"])
            if "v" in rec:
                normalise(rec["n"], float(rec["v"]), rec["u"])
            assert metric.name in CITY.device(m.device_id).metrics
        times = [first["bt"] + rec.get("t", 0) for rec in records]
        assert times == sorted(times)


def test_chirpstack_payloads() -> None:
    app = CITY.lorawan.chirpstack_application_id
    for m in _window(_of_format("chirpstack")):
        assert m.topic == f"application/{app}/device/{m.device_id}/event/up"
        doc = json.loads(m.payload)
        assert doc["deviceInfo"]["devEui"] == m.device_id
        assert doc["deviceInfo"]["applicationId"] == app
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00", doc["time"])
        assert set(doc["object"]) == set(CITY.device(m.device_id).metrics)
        assert doc["rxInfo"][0]["metadata"]["region_common_name"] == "AS923"
        assert doc["txInfo"]["modulation"]["lora"]["bandwidth"] == 125000
        assert re.fullmatch(r"[0-9a-f-]{36}", doc["deduplicationId"])


def test_tts_payloads() -> None:
    app = CITY.lorawan.tts_application_id
    for m in _window(_of_format("tts")):
        assert m.topic == f"v3/{app}/devices/{m.device_id}/up"
        doc = json.loads(m.payload)
        assert doc["end_device_ids"]["device_id"] == m.device_id
        assert doc["end_device_ids"]["application_ids"]["application_id"] == app
        received = datetime.fromisoformat(doc["received_at"])
        assert 0 <= received.timestamp() - m.ts < 1
        up = doc["uplink_message"]
        assert set(up["decoded_payload"]) == set(CITY.device(m.device_id).metrics)
        assert isinstance(up["settings"]["frequency"], str)


def test_tasmota_payloads_use_local_time_and_real_sections() -> None:
    for m in _window(_of_format("tasmota")):
        assert m.topic == f"tele/{m.device_id}/SENSOR"
        doc = json.loads(m.payload)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", doc["Time"])
        local = datetime.fromisoformat(doc["Time"])
        assert local.replace(tzinfo=UTC).timestamp() - m.ts == 7 * 3600
        device = CITY.device(m.device_id)
        if device.kind == "smart_meter":
            e = doc["ENERGY"]
            assert {"Total", "Today", "Yesterday", "Power", "Voltage", "Current"} <= set(e)
            assert 0 <= e["Today"] < e["Total"]
        else:
            assert set(doc["SDS0X1"]) == {"PM2.5", "PM10"}
            assert {"Temperature", "Humidity", "DewPoint"} <= set(doc["BME280"])
            assert doc["TempUnit"] == "C"


def test_every_simulated_payload_decodes_with_the_ingest_decoders() -> None:
    from ingest.formats import decode

    received = datetime(2026, 11, 20, 12, tzinfo=UTC)
    msgs = _window(CITY.devices[::2], batch=20)
    assert {CITY.device(m.device_id).format for m in msgs} == {
        "native",
        "senml",
        "chirpstack",
        "tts",
        "tasmota",
    }
    for m in msgs:
        decoded = decode(m.topic, m.payload, received)
        assert decoded.device_id == m.device_id
        assert not decoded.errors, (m.topic, decoded.errors)
        assert len(decoded.readings) == m.readings
        names: Counter[str] = Counter()
        for r in decoded.readings:
            metric, _, _ = normalise(r.name, r.value, r.unit)
            names[metric.name] += 1
            assert r.ts is not None
            assert abs(r.ts.timestamp() - m.ts) < 3 * 3600  # within the message's batch
        assert set(names) == set(CITY.device(m.device_id).metrics)


# -- faults -------------------------------------------------------------------------------------
def test_fault_specs_parse_and_bad_ones_are_refused() -> None:
    rates = faults.parse_faults("spike, flatline=0.2", 0.05)
    assert rates == {"spike": 0.05, "flatline": 0.2}
    assert set(faults.parse_faults("all", 0.1)) == set(faults.FAULTS)
    with pytest.raises(faults.FaultError, match="unknown fault"):
        faults.parse_faults("gremlins")
    with pytest.raises(faults.FaultError, match="within"):
        faults.parse_faults("spike=2")


def test_value_faults_leave_their_signatures() -> None:
    device = CITY.device("aq-tran-hung-dao")
    t = schedule.reading_times(device, utc(2026, 1, 5), utc(2026, 1, 8)).astype(float)
    env = Environment(CITY, 0, None, float(t[0]), float(t[-1]))
    clean = signals.sample(device, t, env)

    def sampler(at: np.ndarray) -> dict[str, np.ndarray]:
        return signals.sample(device, at, env)

    def faulty(name: str, rate: float) -> dict[str, np.ndarray]:
        plan = FaultPlan({name: rate}, seed=0)
        return faults.apply_value_faults(device, t, clean, plan, clean=sampler)

    spiked = faulty("spike", 0.01)
    hits = [(m, i) for m in clean for i in np.nonzero(spiked[m] != clean[m])[0]]
    assert hits
    for m, i in hits:
        mul, add = faults.SPIKES[m]
        lo, hi = METRICS[m].reject
        assert spiked[m][i] == pytest.approx(np.clip(clean[m][i] * mul + add, lo, hi))

    flat = faulty("flatline", 1.0)
    runs = [m for m in clean if (np.diff(flat[m]) == 0).sum() > 30]
    assert runs

    drifted = faulty("drift", 1.0)
    changed = [m for m in clean if not np.allclose(drifted[m], clean[m])]
    assert changed
    for m in changed:
        hit = drifted[m] != clean[m]
        how, size = faults.DRIFTS[m]
        # The offset grows linearly with the time since the 3-day episode began.
        progress = (t % (3 * DAY)) / (3 * DAY)
        shift = size * progress[hit]
        got = drifted[m][hit]
        base = clean[m][hit]
        lo, hi = METRICS[m].reject
        up = np.clip(base * (1 + shift) if how == "rel" else base + shift, lo, hi)
        down = np.clip(base * (1 - shift) if how == "rel" else base - shift, lo, hi)
        assert (np.isclose(got, up) | np.isclose(got, down)).all(), m

    inverted = faulty("pm-inversion", 0.05)
    assert (inverted["pm25"] > inverted["pm10"]).any()
    assert (clean["pm25"] < clean["pm10"]).all()

    plan = FaultPlan({"wrong-unit": 0.05}, seed=0)
    masks = faults.wrong_unit_masks(device, t, plan)
    assert masks
    assert any(mask.any() for mask in masks.values())


def test_counter_reset_restarts_from_zero() -> None:
    meter = next(d for d in CITY.devices if d.kind == "smart_meter")
    t = schedule.reading_times(meter, utc(2026, 4, 1), utc(2026, 4, 4)).astype(float)
    env = Environment(CITY, 0, None, float(t[0]), float(t[-1]))
    clean = signals.sample(meter, t, env)
    out = faults.apply_value_faults(
        meter,
        t,
        clean,
        FaultPlan({"counter-reset": 1.0}, seed=1),
        clean=lambda at: signals.sample(meter, at, env),
    )
    drops = np.nonzero(np.diff(out["energy"]) < 0)[0]
    assert drops.size
    assert (out["energy"][drops + 1] < 50).all()  # back near zero


def test_dropout_and_offline_remove_readings() -> None:
    device = CITY.device("aq-vi-xuyen")
    t = schedule.reading_times(device, utc(2026, 2, 1), utc(2026, 2, 4)).astype(float)
    gone = faults.absent(device, t, FaultPlan({"dropout": 0.1}, seed=0))
    assert 0.05 < gone.mean() < 0.15
    off = faults.absent(device, t, FaultPlan({"offline": 1.0}, seed=0))
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], off.astype(int), [0])))))[::2]
    assert runs.max() * device.interval_s >= 2 * HOUR


# -- load mode payloads -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["native", "senml"])
def test_load_payloads_hold_k_distinct_keys(fmt: str) -> None:
    from ingest.formats import decode

    for k in (1, 7, len(LOAD_METRICS) + 5):
        payload = encode(fmt, "load-x-00001", 3, 1_795_000_000_123, k)
        decoded = decode(native_topic("load-x-00001"), payload, datetime.now(UTC))
        keys = {(r.name, r.ts) for r in decoded.readings}
        assert len(keys) == k
        assert not decoded.errors
        assert all(normalise(r.name, r.value, r.unit)[2] == QUALITY_PASS for r in decoded.readings)


def native_topic(device_id: str) -> str:
    return payloads.native_topic(device_id)


def test_energy_tables_cover_the_years_ahead() -> None:
    meter = next(d for d in CITY.devices if d.kind == "smart_meter")
    t = np.array([utc(2030, 1, 1), utc(2035, 1, 1)])
    e = energy.meter_energy(meter, t)
    assert e[1] > e[0]


def test_help_describes_modes_faults_scenarios_and_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("--backfill-hours", "--speed", "--from", "--faults", "flood", "load", "malformed"):
        assert word in out
    assert main(["load", "--help"]) == 0
    out = capsys.readouterr().out
    for word in ("--rate", "--messages", "--readings-per-message", "--max-outstanding"):
        assert word in out
    assert main(["--speed", "0"]) == 2
    assert "speed must be positive" in capsys.readouterr().err


def test_list_devices_prints_the_registry_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-devices", "--devices", "30"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 30
    first: dict[str, Any] = json.loads(lines[0])
    assert set(first) == {
        "id",
        "kind",
        "name",
        "area_id",
        "lat",
        "lon",
        "public",
        "format",
        "metrics",
        "interval_s",
        "metadata",
    }
    assert first["id"] == CITY.devices[0].id


def test_message_counts_follow_the_schedule() -> None:
    t0, t1 = utc(2026, 6, 1), utc(2026, 6, 1, 3)
    gen = Generator(CITY, CITY.devices, batch=12)
    msgs = gen.window(t0, t1)
    expected_msgs = 0
    expected_readings = 0
    for d in CITY.devices:
        n = schedule.reading_times(d, t0, t1).size
        expected_readings += n * len(d.metrics)
        expected_msgs += math.ceil(n / 12) if d.format in ("native", "senml") else n
    assert len(msgs) == expected_msgs
    assert sum(m.readings for m in msgs) == expected_readings
    per_device = defaultdict(list)
    for m in msgs:
        per_device[m.device_id].append(m.ts)
    assert all(v == sorted(v) for v in per_device.values())


def test_without_a_broker_credential_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DOTHI_MQTT_URL", raising=False)
    monkeypatch.setenv("DOTHI_HOME", str(tmp_path))
    monkeypatch.setenv("DOTHI_CONFIG", str(tmp_path / "none.toml"))
    assert main(["--kinds", "river_gauge"]) == 2
    err = capsys.readouterr().err
    assert "dothi simulate: error: no credential for MQTT role 'simulator'" in err
    assert "Traceback" not in err
