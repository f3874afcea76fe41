"""The provincial portal in headless Chromium, served by the API on a seeded city.

Checked as a citizen sees it: every public station with the official VN_AQI colour (computed
style = the category's RGB of QĐ 1459 Bảng 1), the Bảng 3 items, a 24-hour chart, public
warnings, a reading stored after the page loaded appearing without a reload, the language
toggle, keyboard use and a phone-sized screen. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page

from analytics.aqi import CATEGORIES
from store.loader import load_batch
from tests.browser_support import chromium, require_chromium, rgb, screenshot, site
from tests.city_support import SeededCity, seed_city

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"pm25": "PM2.5", "pm10": "PM10", "o3": "O₃", "no2": "NO₂", "so2": "SO₂", "co": "CO"}
OFFICIAL_RGB = {c.key: "rgb({}, {}, {})".format(*c.rgb) for c in CATEGORIES}


@pytest.fixture(scope="module")
def city(db_url: str) -> SeededCity:
    return seed_city(db_url)


@pytest.fixture(scope="module")
def base(db_url: str, city: SeededCity) -> Iterator[str]:
    with site(db_url) as url:
        yield url


def test_chromium_is_installed() -> None:
    """Reported as a failure of its own, so a machine without the browser is obvious."""
    require_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    # Navigating away aborts the open event stream: that is no failure.
    pg.on(
        "requestfailed",
        lambda r: None if r.failure == "net::ERR_ABORTED" else problems.append(f"{r.url}"),
    )
    pg.goto(f"{base}/portal/")
    pg.wait_for_selector("body[data-ready=true]")
    yield pg
    context.close()
    assert problems == []


def api(base: str, path: str) -> Any:
    return httpx.get(f"{base}{path}", timeout=30).json()


def test_stations_show_the_official_colours_and_bang_3(page: Page, base: str) -> None:
    stations = api(base, "/api/v1/aqi/stations")
    assert {s["device_id"] for s in stations} == {"aq-dt-a", "aq-dt-b", "aq-dt-c"}
    assert len({s["aqi"]["category"]["key"] for s in stations}) == 3  # three categories
    areas = {a["id"]: a for root in api(base, "/api/v1/areas") for a in [root, *_descendants(root)]}
    for st in stations:
        aqi = st["aqi"]
        card = page.locator(f"#station-{st['device_id']}")
        badge = card.locator(".aqi-badge")
        colour = badge.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == OFFICIAL_RGB[aqi["category"]["key"]] == rgb(aqi["category"]["colour_hex"])
        assert badge.locator(".aqi-value").inner_text() == str(aqi["value"])
        text = card.inner_text()
        # Bảng 3: colour (above), station name and place with coordinates, dominant pollutant
        # and every AQIx, health advice, method, data source.
        assert st["name"] in text
        assert areas[st["area_id"]]["name"] in text
        assert re.search(r"\d+,\d{4}° B, \d+,\d{4}° Đ", text)
        assert aqi["category"]["name_vi"] in text
        assert "Chất ô nhiễm chính: PM2.5" in text
        cells = card.locator("table.subindex tbody tr").evaluate_all(
            "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
        )
        shown = {label.split(" (")[0]: int(aqix) for label, aqix, _ in cells}
        assert shown == {LABELS[p]: v for p, v in aqi["sub_indices"].items()}
        assert aqi["category"]["advice_vi"] in text
        assert aqi["category"]["advice_sensitive_vi"] in text
        assert "VN_AQI (QĐ 1459/QĐ-TCMT)" in text
        assert "Nguồn: trạm quan trắc tự động" in text
        marker = page.locator(f'.marker[data-station="{st["device_id"]}"] circle')
        assert marker.evaluate("e => getComputedStyle(e).fill") == rgb(
            aqi["category"]["colour_hex"]
        )
    legend = page.locator("#legend li .swatch")
    assert legend.count() == 6
    colours = legend.evaluate_all("es => es.map(e => getComputedStyle(e).backgroundColor)")
    assert colours == [OFFICIAL_RGB[c.key] for c in CATEGORIES]
    screenshot(page, "portal-desktop")


def _descendants(area: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for child in area.get("children", []):
        out += [child, *_descendants(child)]
    return out


def test_each_station_has_a_24_hour_chart(page: Page, base: str) -> None:
    history = api(base, "/portal/data/history")
    for station, points in history.items():
        assert points, station
        chart = page.locator(f"#station-{station} svg.chart")
        assert chart.get_attribute("role") == "img"
        assert "VN_AQI 24 giờ qua" in (chart.get_attribute("aria-label") or "")
        bars = chart.locator("rect.bar")
        assert bars.count() == len(points) == int(chart.get_attribute("data-bars") or 0)
        fills = bars.evaluate_all("es => es.map(e => getComputedStyle(e).fill)")
        assert fills == [rgb(p["colour_hex"]) for p in points]
        box = bars.first.bounding_box()
        assert box is not None
        assert box["height"] > 0


def test_a_new_reading_appears_live_without_a_reload(page: Page, db_url: str) -> None:
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector('#live-status[data-state="open"]')
    cell = page.locator('[data-live="aq-dt-a:pm25"]').first
    before = cell.inner_text()
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        load_batch(
            conn, [("aq-dt-a", "pm25", now, 77.7, 1), ("rg-dt-dao", "water_level", now, 4.12, 1)]
        )
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"aq-dt-a:pm25\"]').textContent === '77,7'"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"rg-dt-dao:water_level\"]').textContent"
        " === '4,12'"
    )
    assert before != "77,7"
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    screenshot(page, "portal-live-update")


def test_language_toggle(page: Page) -> None:
    html = page.locator("html")
    toggle = page.locator("#lang-toggle")
    assert html.get_attribute("lang") == "vi"
    assert page.locator("h1").inner_text() == "Chất lượng không khí tỉnh Nam Định"
    assert toggle.inner_text() == "English"
    assert toggle.get_attribute("lang") == "en"
    toggle.click()
    assert html.get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Air quality in Nam Định province"
    assert toggle.inner_text() == "Tiếng Việt"
    assert toggle.get_attribute("lang") == "vi"
    names_en = {c.name_en for c in CATEGORIES}
    shown = set(page.locator(".aqi-name").all_inner_texts())
    assert shown <= names_en
    assert "Dominant pollutant: PM2.5" in page.locator("#stations").inner_text()
    assert "Sensitive groups" in page.locator("#stations").inner_text()
    assert page.locator("#alerts").inner_text().count("Flood warning") == 1
    # Station names and alert titles stay Vietnamese, and say so to screen readers.
    assert page.locator(".station h3").first.get_attribute("lang") == "vi"
    assert page.locator(".alert-title").first.get_attribute("lang") == "vi"
    screenshot(page, "portal-english")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("html").get_attribute("lang") == "en"  # the choice is remembered
    page.locator("#lang-toggle").click()
    assert page.locator("html").get_attribute("lang") == "vi"


def test_public_warnings_only(page: Page, city: SeededCity) -> None:
    alerts = page.locator("#alerts .alert")
    ids = {int(a) for a in alerts.evaluate_all("es => es.map(e => e.dataset.alert)")}
    # Flood (gauge) and air quality (station) warnings; the street light and the meter are not
    # public devices, and an info-level alert is not a public warning.
    assert ids == {city.alert_ids["flood"], city.alert_ids["air"]}
    text = page.locator("#alerts").inner_text()
    assert "Cảnh báo lũ – Trạm thủy văn Nam Định (sông Đào)" in text
    assert "NGHIÊM TRỌNG" in text.upper()
    critical = page.locator("#alerts .alert.sev-critical")
    assert critical.first.get_attribute("data-alert") == str(city.alert_ids["air"])


def test_keyboard_reaches_the_map_and_the_stations(page: Page) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    marker = page.locator('.marker[data-station="aq-dt-b"]')
    assert marker.get_attribute("tabindex") == "0"
    assert "VN_AQI" in (marker.get_attribute("aria-label") or "")
    marker.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "station-aq-dt-b"
    # Badge text contrast (black or white, chosen per colour) is at least 4.5:1.
    ratios = page.locator(".aqi-badge").evaluate_all(
        """es => es.map(e => {
          const lum = c => { const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(v => {
              v = v / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          const s = getComputedStyle(e);
          const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05);
        })"""
    )
    assert min(ratios) >= 4.5


def test_usable_on_a_phone(browser: Browser, base: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="vi-VN"
    )
    page = context.new_page()
    page.goto(f"{base}/portal/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    box = page.locator("#lang-toggle").bounding_box()
    assert box is not None
    assert box["height"] >= 44  # a comfortable touch target
    screenshot(page, "portal-phone")
    context.close()


def test_pages_ship_everything_they_use(base: str) -> None:
    """No CDN, no tiles, no web fonts: every asset is served by dothi itself."""
    for folder in ("portal", "ops"):
        for path in (ROOT / "api" / folder).iterdir():
            text = path.read_text(encoding="utf-8")
            urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
            assert urls == set(), f"{path.name} refers to {urls}"
    for page_path in ("/portal/", "/ops"):
        response = httpx.get(base + page_path, timeout=30)
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<meta charset="utf-8">' in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert httpx.get(base + "/portal", timeout=30).status_code == 308
    js = httpx.get(base + "/portal/assets/portal.js", timeout=30)
    assert "charset=utf-8" in js.headers["content-type"]


def _inside(point: tuple[float, float], ring: list[list[float]]) -> bool:
    """Even-odd rule point-in-polygon."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_the_shipped_outline_contains_every_area_and_device() -> None:
    outline = json.loads((ROOT / "api" / "portal" / "nam-dinh.geojson").read_text("utf-8"))
    feature = outline["features"][0]
    assert feature["properties"]["approximate"] is True
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    areas = (ROOT / "store" / "data" / "areas_nam_dinh.csv").read_text("utf-8").splitlines()[1:]
    for line in areas:
        cols = line.split(",")
        assert _inside((float(cols[6]), float(cols[5])), ring), cols[0]
    from simulators.city import load_city

    for device in load_city(None).devices:
        if device.lat is not None and device.lon is not None:
            assert _inside((device.lon, device.lat), ring), device.id
