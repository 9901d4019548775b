"""Fixtures for tests that drive the service's pages in headless Chromium.

The browser is the system Chromium (Debian's ``chromium`` package, which ``python3 dev.py test``
installs when it is missing), driven by Playwright: nothing is downloaded. A test asks for a
running service (``cockpit``) and a ``page``; every request the page makes to a host other than
127.0.0.1 is refused and listed in ``blocked_requests``, every console error and uncaught
exception in ``page_errors``, and a screenshot of the page is left in tests/artifacts/::

    def test_the_dashboard_shows_the_accounts(cockpit, page, page_errors, blocked_requests):
        page.goto(cockpit.url("/"))
        expect(page.get_by_text("PRACTICE-150K")).to_be_visible()
        assert page_errors == []
        assert blocked_requests == []

Waits are on conditions (``expect``, ``wait_for``): ``SAFETY_MS`` only bounds them.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from ..service.test_serve import Service, serving, wait_until_up

SAFETY_MS = 30_000
"""Milliseconds any browser action or expectation may take before the test gives up."""
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
"""Where each browser test leaves a full-page screenshot, named after the test."""
TOKEN = "browser-test-token"
"""The bearer token every cockpit is started with."""
CHROMIUM = Path("/usr/bin/chromium")

expect.set_options(timeout=SAFETY_MS)


def chromium() -> str:
    """The system Chromium, or a failed test that says how to install it."""
    found = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if found is None:
        pytest.fail(
            "the browser tests need the system Chromium: apt-get install chromium chromium-driver"
            " (python3 dev.py test does it when run as root on Debian)"
        )
    return found


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the tests of this package, in each xdist worker.

    Package scope, not session: while Playwright's sync API is started it marks its asyncio loop
    as running in this thread, so asyncio tests the same worker runs later could not start
    theirs. Leaving the package stops it; launches stay few, as the tests here run together.
    """
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(),
            headless=True,
            args=["--disable-dev-shm-usage"],  # a container's small /dev/shm must not crash it
            timeout=SAFETY_MS,
        )
        try:
            yield launched
        finally:
            launched.close()


def _elsewhere(url: str) -> bool:
    """A network address on a host other than 127.0.0.1 (data: and blob: are not network)."""
    address = urlsplit(url)
    return address.scheme in {"http", "https", "ws", "wss"} and address.hostname != "127.0.0.1"


@pytest.fixture
def blocked_requests() -> list[str]:
    """Every address the test's pages asked for on a host other than 127.0.0.1, in order; each
    was refused. Empty shows that the page needs nothing from the internet."""
    return []


@pytest.fixture
def context(browser: Browser, blocked_requests: list[str]) -> Iterator[BrowserContext]:
    """A fresh browser profile for one test (no cookies, storage or cache of another), in UTC
    and US English, that refuses and records each request or WebSocket to another host."""
    profile = browser.new_context(
        viewport={"width": 1280, "height": 800},
        locale="en-US",
        timezone_id="UTC",
        service_workers="block",  # a service worker's requests would bypass the refusal
    )
    profile.set_default_timeout(SAFETY_MS)
    profile.set_default_navigation_timeout(SAFETY_MS)

    def refuse(route: Route) -> None:
        blocked_requests.append(route.request.url)
        route.abort("blockedbyclient")

    def refuse_socket(socket: WebSocketRoute) -> None:
        blocked_requests.append(socket.url)
        socket.close()

    profile.route(_elsewhere, refuse)
    profile.route_web_socket(_elsewhere, refuse_socket)
    try:
        yield profile
    finally:
        profile.close()


@pytest.fixture
def page_errors() -> list[str]:
    """The console errors and uncaught exceptions of the test's pages, in order, each with
    where it happened. Empty shows that the page ran cleanly."""
    return []


def _console_error(message: ConsoleMessage) -> str:
    where = message.location
    return f"console error: {message.text} ({where['url']}:{where['lineNumber']})"


def _artifact(test_name: str) -> Path:
    """tests/artifacts/<test name>.png, with the characters a file name cannot hold replaced."""
    return ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', test_name).strip('_')}.png"


@pytest.fixture
def page(
    context: BrowserContext, page_errors: list[str], request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A blank tab in ``context`` whose console errors and uncaught exceptions go to
    ``page_errors``; when the test ends its full page is saved to tests/artifacts/."""
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_errors.append(_console_error(message))

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: page_errors.append(f"uncaught {error.name}: {error}"))
    yield tab
    if tab.is_closed():
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.screenshot(path=_artifact(request.node.name), full_page=True, timeout=SAFETY_MS)
    except PlaywrightError as error:  # the test's own outcome says more than a lost picture
        warnings.warn(f"no screenshot of {request.node.name}: {error}", stacklevel=1)


@attrs.frozen
class Cockpit:
    """A running ``tradeforge serve`` on the embedded simulator, ready for requests."""

    service: Service
    """The process, its banner (``service.field("token")``) and its stderr (``errors()``)."""
    token: str
    """The bearer token the service was started with (``--token``)."""
    read_only: bool
    """Started with ``--read-only``: no order or position changes."""

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``, the service's address."""
        return self.service.base

    def url(self, path: str = "/") -> str:
        """The address of ``path`` (which starts with ``/``) on this service."""
        return f"{self.base}{path}"


@contextmanager
def running_cockpit(*options: str) -> Iterator[Cockpit]:
    """``tradeforge serve --token TOKEN`` with ``options`` on a free port and the embedded
    simulator, answering ``/ready``, stopped when the block ends. Its paper-exchange state and
    order journal live in a temporary data directory of its own, so no two tests share them."""
    with serving("--token", TOKEN, *options) as service:
        status, body = wait_until_up(service.base, TOKEN)
        assert status == 200, body
        yield Cockpit(service=service, token=TOKEN, read_only="--read-only" in options)


@pytest.fixture
def cockpit() -> Iterator[Cockpit]:
    """A fresh service that trades (paper orders on the simulator's two practice accounts)."""
    with running_cockpit() as started:
        yield started


@pytest.fixture
def read_only_cockpit() -> Iterator[Cockpit]:
    """A fresh service started with ``--read-only``: it shows everything and changes nothing."""
    with running_cockpit("--read-only") as started:
        yield started


@pytest.fixture(params=[False, True], ids=["trading", "read-only"])
def each_cockpit(request: pytest.FixtureRequest) -> Iterator[Cockpit]:
    """The test once with a trading service and once with a ``--read-only`` one."""
    with running_cockpit(*(["--read-only"] if request.param else [])) as started:
        yield started
