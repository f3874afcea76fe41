"""Headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, and the API served
for it on a seeded database. Playwright's own browser download is never used: it fails here.

Without Chromium the browser tests fail with a clear message rather than skip: CI installs it
(scripts/setup), so a missing browser is a broken machine, not an optional feature.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.api_support import app_for, served

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


MISSING = (
    f"Chromium is not installed at {CHROMIUM}: the portal and operations console browser tests"
    " need it. Run scripts/setup (it installs the Debian package 'chromium'); do not use"
    " 'playwright install'."
)


def require_chromium() -> None:
    """Fail (never skip) when the browser is missing."""
    if not CHROMIUM.exists():
        pytest.fail(MISSING, pytrace=False)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the module's tests."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def site(db_url: str, **overrides: Any) -> Iterator[str]:
    """The API (portal and console included) on ``db_url``; yields its base URL. Anonymous rate
    limits are lifted: a test reloading pages is not an abusive client."""
    values: dict[str, Any] = {"anon_rate_per_s": 1000.0, "anon_burst": 1000}
    values.update(overrides)
    with served(app_for(db_url, **values)) as base:
        yield base


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/ (gitignored) for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def rgb(hex_colour: str) -> str:
    """``#FF7E00`` as the browser's computed style writes it: ``rgb(255, 126, 0)``."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
