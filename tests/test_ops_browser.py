"""The operations console (/ops) in headless Chromium against the API on a seeded city.

An operator logs in with an API key (kept in sessionStorage only), sees the open alerts most
severe and oldest first, filters them, opens one (also through ``/ops#alert=<id>``, the link
Grafana's alert tables use), acknowledges and resolves it by clicking, and reads its history
and its device's other alerts. Each change is checked in the database too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page

from dashboards import build_all
from tests.api_support import Keys, make_keys
from tests.browser_support import chromium, require_chromium, screenshot, site
from tests.city_support import SeededCity, seed_city


@dataclass(frozen=True)
class Console:
    """A served console on a freshly seeded database."""

    base: str
    db_url: str
    city: SeededCity
    keys: Keys


def test_chromium_is_installed() -> None:
    """Reported as a failure of its own, so a machine without the browser is obvious."""
    require_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def console(fresh_db_url: str) -> Iterator[Console]:
    """Each test changes alerts, so each gets its own database."""
    city = seed_city(fresh_db_url)
    keys = make_keys(fresh_db_url)
    with site(fresh_db_url) as base:
        yield Console(base, fresh_db_url, city, keys)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="vi-VN")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == []


def login(page: Page, base: str, key: str, path: str = "/ops") -> None:
    page.goto(base + path)
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")


def alert_row(conn: psycopg.Connection[Any], alert_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT state, acknowledged_by, resolved_by, resolution FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_acknowledge_and_resolve_by_clicking(page: Page, console: Console) -> None:
    ids = console.city.alert_ids
    login(page, console.base, console.keys.writer)
    page.wait_for_selector("#alerts tbody tr")
    order = page.locator("#alerts tbody tr").evaluate_all(
        "rs => rs.map(r => Number(r.dataset.alert))"
    )
    # Critical first; then warnings oldest first; the info-level alert last.
    assert order[0] == ids["air"]
    assert order[-1] == ids["lamp"]
    assert set(order) == set(ids.values())
    assert page.evaluate("sessionStorage.getItem('dothi.ops.key')") == console.keys.writer

    page.click(f'button.open[data-alert="{ids["flood"]}"]')
    page.wait_for_selector(f'#detail[data-alert="{ids["flood"]}"]')
    assert page.evaluate("location.hash") == f"#alert={ids['flood']}"
    assert page.is_enabled("#ack")
    page.fill("#comment", "Đã cử đội tuần tra đê")
    page.click("#ack")
    page.wait_for_selector('#detail[data-state="acknowledged"]')
    assert "Đã tiếp nhận cảnh báo." in page.inner_text("#action-status")
    assert page.is_disabled("#ack")
    history = page.inner_text("#history")
    assert "Tiếp nhận" in history
    assert "Đã cử đội tuần tra đê" in history
    key_id = console.keys.writer.split("_")[1]
    with psycopg.connect(console.db_url) as conn:
        assert alert_row(conn, ids["flood"])[:2] == ("acknowledged", f"key:{key_id}")
    screenshot(page, "ops-acknowledged")

    page.click("#resolve")
    page.wait_for_selector('#detail[data-state="resolved"]')
    assert page.is_disabled("#resolve")
    with psycopg.connect(console.db_url) as conn:
        state, _, resolved_by, resolution = alert_row(conn, ids["flood"])
    assert (state, resolved_by, resolution) == ("resolved", f"key:{key_id}", "manual")
    # Resolved alerts leave the list of active ones.
    page.wait_for_function(
        f"() => !document.querySelector('#alerts tbody tr[data-alert=\"{ids['flood']}\"]')"
    )
    page.fill("#comment", "Nước đã rút dưới BĐ I")
    page.click("#add-comment")
    page.wait_for_selector("#history li[data-event=commented]")
    screenshot(page, "ops-resolved")


def test_the_link_grafana_uses_opens_the_alert(page: Page, console: Console) -> None:
    alert_id = console.city.alert_ids["meter"]
    # The City overview's alert table links to ${dothi_url}/ops#alert=${__data.fields.id}.
    model = build_all(console.base)["dothi-city"]
    consts = {v["name"]: v["query"] for v in model["templating"]["list"] if v["type"] == "constant"}
    panel = next(
        p for p in model["panels"] if p["type"] == "table" and p["title"] == "Cảnh báo đang mở"
    )
    link = panel["fieldConfig"]["defaults"]["links"][0]["url"]
    url = link.replace("${dothi_url}", consts["dothi_url"]).replace(
        "${__data.fields.id}", str(alert_id)
    )
    assert url == f"{console.base}/ops#alert={alert_id}"
    login(page, console.base, console.keys.all, path=url.removeprefix(console.base))
    page.wait_for_selector(f'#detail[data-alert="{alert_id}"]')
    assert page.inner_text("#detail-title").startswith(f"#{alert_id} ")
    assert "Đã tiếp nhận" in page.inner_text("#detail-badges")
    # The device's alert history lists this one (and links to each).
    assert page.locator(f'#device-alerts a[href="#alert={alert_id}"]').count() == 1
    # Another link in the same tab switches alerts without a reload.
    page.evaluate(f"location.hash = 'alert={console.city.alert_ids['air']}'")
    page.wait_for_selector(f'#detail[data-alert="{console.city.alert_ids["air"]}"]')


def test_filters_by_area_and_kind(page: Page, console: Console) -> None:
    ids = console.city.alert_ids
    login(page, console.base, console.keys.all)
    page.wait_for_selector("#alerts tbody tr")

    def shown() -> set[int]:
        return set(
            page.locator("#alerts tbody tr").evaluate_all("rs => rs.map(r => +r.dataset.alert)")
        )

    page.select_option("#f-area", "hai-hau")  # the district: its towns' alerts included
    page.wait_for_function("() => document.querySelectorAll('#alerts tbody tr').length === 1")
    assert shown() == {ids["meter"]}
    page.select_option("#f-area", "")
    page.wait_for_function("() => document.querySelectorAll('#alerts tbody tr').length === 4")
    page.select_option("#f-kind", "lamp_daylight")
    assert shown() == {ids["lamp"]}
    page.select_option("#f-kind", "")
    page.select_option("#f-state", "acknowledged")
    page.wait_for_function("() => document.querySelectorAll('#alerts tbody tr').length === 1")
    assert shown() == {ids["meter"]}


def test_a_read_only_key_cannot_change_alerts(page: Page, console: Console) -> None:
    alert_id = console.city.alert_ids["air"]
    login(page, console.base, console.keys.all, path=f"/ops#alert={alert_id}")
    page.wait_for_selector(f'#detail[data-alert="{alert_id}"]')
    page.click("#ack")
    page.wait_for_function(
        "() => document.querySelector('#action-status').textContent.includes('alerts:write')"
    )
    with psycopg.connect(console.db_url) as conn:
        assert alert_row(conn, alert_id)[0] == "open"


def test_a_wrong_key_is_refused_and_not_kept(page: Page, console: Console) -> None:
    login(page, console.base, "dk_000000000000_wrong")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "không hợp lệ" in page.inner_text("#login-error")
    assert page.is_hidden("#console")
    assert page.evaluate("sessionStorage.getItem('dothi.ops.key')") is None
    assert page.evaluate("document.activeElement.id") == "key"
    # A key survives a reload of the tab (sessionStorage) and goes on logout.
    login(page, console.base, console.keys.writer)
    page.wait_for_selector("#alerts tbody tr")
    page.reload()
    page.wait_for_selector("#alerts tbody tr")
    page.click("#logout")
    assert page.is_visible("#login")
    assert page.evaluate("sessionStorage.getItem('dothi.ops.key')") is None
