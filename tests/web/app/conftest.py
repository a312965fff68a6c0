"""Fixtures for the phone app: a Chromium whose camera shows what the test holds up, and
phones (browser profiles of 390x844, as a common phone) that open qrgate's /app/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright

from qrgate.core.policy import AppPolicy, NumberMatching
from support.camera import FakeCamera
from support.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.phone_app import PhoneApp
from support.stack import PASSWORD, Clock, Stack, serve_stack

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1,
         "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="session")
def camera(tmp_path_factory: pytest.TempPathFactory) -> FakeCamera:
    return FakeCamera(tmp_path_factory.mktemp("camera") / "camera.y4m")


@pytest.fixture(scope="session")
def camera_browser(playwright: Playwright, camera: FakeCamera) -> Iterator[Browser]:
    """A second Chromium, with the fake camera: the phone. (`browser` is the computer.)"""
    require_chromium()
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                          args=[*CHROMIUM_ARGS, *camera.browser_args()])
    yield launched
    launched.close()


@pytest.fixture
def app_stack(tmp_path: Path, database_url: str) -> Iterator[tuple[Stack, Callable[[], None]]]:
    """A server on the real clock (the app uses the phone's clock), number matching on,
    and what stops it (idempotent), for tests that take the server away. Carol has no
    password: she enrols with the one-time code shown beside the QR."""
    stack, close = serve_stack(home=tmp_path, database_url=database_url, clock=Clock(),
                               join=None, policy=AppPolicy(number_matching=NumberMatching.ALWAYS),
                               users={"alice": PASSWORD, "bob": PASSWORD, "carol": None})
    stack.rt.clock = time.time
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            close()

    yield stack, stop
    stop()


@pytest.fixture
def phone_factory(camera_browser: Browser, camera: FakeCamera
                  ) -> Iterator[Callable[..., PhoneApp]]:
    contexts: list[BrowserContext] = []

    def make(base_url: str, lang: str = "en") -> PhoneApp:
        """A phone whose browser speaks `lang` ("en" or "zh-CN")."""
        context = camera_browser.new_context(locale="en-GB" if lang == "en" else lang, **PHONE)
        contexts.append(context)
        return PhoneApp(page=context.new_page(), camera=camera, base_url=base_url, lang=lang)

    yield make
    for context in contexts:
        context.close()
