"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (never a
browser Playwright downloads), and pages that fail their test on any uncaught JavaScript error.

A test module that imports this one is skipped where Playwright or Chromium is missing. The
``browser`` and ``page`` fixtures in conftest.py are built on ``launch_chromium`` and ``open_page``;
``page`` opens the importing module's ``url`` fixture (the app served by ``BackgroundServer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WAIT_MS = 60_000  # a busy CI machine encodes an upload in well under this
DESKTOP = {"width": 1280, "height": 860}

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)", allow_module_level=True)

__all__ = ["ARGS", "CHROMIUM", "DESKTOP", "WAIT_MS", "expect", "launch_chromium", "open_page"]


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Headless Chromium, closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser, url: str, viewport: dict | None = None, **context_options) -> Iterator[Page]:
    """``url`` in a page of its own browser context, once the page has set ``data-ready`` on its body.
    Waits up to ``WAIT_MS``; on leaving the block without an exception, fails if the page threw."""
    context = browser.new_context(viewport=viewport or DESKTOP, **context_options)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        page.goto(url)
        expect(page.locator("body")).to_have_attribute("data-ready", "1")
        yield page
    finally:
        context.close()
    assert not errors, errors
