"""Pages in a real browser: Playwright driving Debian's chromium against a live server.

`live_server` (pytest-django) serves the app from a thread of this process on the test database;
`logged_in` opens a page already logged in as a persona (tests/conftest.py) at a phone or a
desktop width. Chromium comes from apt (`make test` installs it): Playwright's own browser
download is not used.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are still synchronous, one at a time.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = os.environ.get("ORCHCAP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_open_browsers: list[Browser] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[object]:
    """A failed browser test leaves a screenshot of every page it had open under test-artifacts/
    (gitignored; CI keeps the folder), and says where in its report."""
    report = yield
    if report.when == "call" and report.failed and _open_browsers:
        ARTIFACTS.mkdir(exist_ok=True)
        saved = []
        pages = [
            page for c in _open_browsers[0].contexts for page in c.pages if not page.is_closed()
        ]
        for number, page in enumerate(pages, 1):
            path = ARTIFACTS / f"{item.name[:120]}-{number}.png"
            try:
                page.screenshot(path=str(path), full_page=True, timeout=5_000)
                saved.append(f"{path} ({page.url})")
            except Exception as error:  # a crashed page must not hide the test's own failure
                saved.append(f"{path}: no screenshot ({error})")
        if saved:
            report.sections.append(("screenshots", "\n".join(saved)))
            print("\nscreenshots of the failed test's pages:\n" + "\n".join(saved))
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Never skipped: a missing chromium is a broken test machine, said in one line.
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.fail(f"browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _open_browsers.append(browser)
        yield browser
        _open_browsers.remove(browser)
        browser.close()


@pytest.fixture
def new_context(browser: Browser, live_server) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts on the live server: `new_context(viewport="phone")`."""
    contexts: list[BrowserContext] = []

    def make(viewport: str = "desktop") -> BrowserContext:
        context = browser.new_context(
            base_url=live_server.url, viewport=VIEWPORTS[viewport], locale="en-GB"
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def log_in(context: BrowserContext, user: object, base_url: str) -> None:
    """Give the context a session for `user` (as if they had logged in on the login page)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": base_url}]
    )


@pytest.fixture
def logged_in(new_context, live_server) -> Callable[..., Page]:
    """`logged_in(expert, path, viewport="phone")`: a page of a fresh context logged in as the
    persona, at `path`; uncaught script errors are collected in `page.errors` and console errors
    (e.g. a Content-Security-Policy refusal) in `page.console_errors`."""

    def open_page(user: object, path: str = "/", viewport: str = "desktop") -> Page:
        context = new_context(viewport)
        log_in(context, user, live_server.url)
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
        page.console_errors = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda message: (
                page.console_errors.append(message.text)  # type: ignore[attr-defined]
                if message.type == "error"
                else None
            ),
        )
        page.goto(path)
        return page

    return open_page


@pytest.fixture(params=["phone", "desktop"])
def viewport(request: pytest.FixtureRequest) -> str:
    """Run a test at both widths: 390 px (a phone) and 1440 px (a desktop)."""
    return request.param


def slow_network(page: Page, latency_ms: int) -> None:
    """Delay every request of the page by `latency_ms` (Chromium's network emulation): a real
    network's round trip, so what a person does while a request is in flight can be tested."""
    session = page.context.new_cdp_session(page)
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )
