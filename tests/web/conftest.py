"""Fixtures for tests that drive qrgate's pages in a real browser: Debian's Chromium,
driven by Playwright. Chromium is required, not optional: without it these tests fail and
say how to install it, because a page that no test has opened is a page nobody checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from support.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.stack import clock, stack, stack_factory

__all__ = ["browser", "clock", "page", "playwright", "stack", "stack_factory"]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    require_chromium()
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile per test: no cookie from one test reaches another."""
    context = browser.new_context(viewport={"width": 800, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
