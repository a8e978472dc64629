"""Real Chromium for the console's browser tests, driven by Playwright.

The browser is Debian's `chromium` package (scripts/install-services.sh
installs it); Playwright only drives it, through `executable_path`, and never
downloads a browser of its own. Registered as a plugin by tests/conftest.py,
this module provides:

- `browser` (session): the launched `playwright.sync_api.Browser`, headless.
- `page` (function): `page(kind="desktop", locale="zh-CN", accept_language=None,
  **context_options)` opens a new page in a fresh browser context, so cookies
  and storage never leak between pages; every context is closed after the test.
- `screenshot(page, name)`: a full-page PNG under the run's output directory,
  for a person to look at after the run.

Tests that use either fixture get the `browser` marker automatically, so
`-m "not browser"` leaves them out. When such a test fails, each page it
opened is also saved as `<test>-<n>-failed.png`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:  # Playwright is imported when a browser test runs, not when the suite is collected
    from playwright.sync_api import Browser, BrowserContext, Page, Route

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_PACKAGE = "chromium"
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Device:
    """A page's viewport in CSS pixels and whether it behaves like a phone."""

    width: int
    height: int
    is_mobile: bool = False
    has_touch: bool = False


DEVICES: dict[str, Device] = {
    "desktop": Device(1280, 800),
    "phone": Device(360, 740, is_mobile=True, has_touch=True),
}


class ChromiumMissing(RuntimeError):
    """Debian's Chromium is not installed where the tests look for it."""


def chromium_executable() -> Path:
    """The Chromium the tests drive: `chromium` on PATH, else /usr/bin/chromium.

    Returns an absolute path to an executable file. Raises ChromiumMissing,
    naming the Debian package, when neither exists.
    """
    found = shutil.which("chromium")
    if found:
        return Path(found)
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    raise ChromiumMissing(
        f"Chromium is not installed: the browser tests need Debian's `{CHROMIUM_PACKAGE}` package "
        f"(`apt-get install {CHROMIUM_PACKAGE}`, or run scripts/install-services.sh). "
        "Looked for `chromium` on PATH and at /usr/bin/chromium."
    )


def output_directory() -> Path:
    """The test run's output directory: $RISKWATCH_TEST_OUTPUT, else <repo>/test-output.

    Created if missing. Raises OSError when it cannot be created.
    """
    configured = os.environ.get("RISKWATCH_TEST_OUTPUT")
    directory = Path(configured) if configured else REPO / "test-output"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


_SCREENSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page (not only the viewport) as `<output>/screenshots/<name>.png`.

    `name` is letters, digits, `.`, `_` and `-` (a trailing `.png` is
    optional); a screenshot of the same name is overwritten. Returns the
    PNG's path. Raises ValueError for any other name, so a name can never
    write outside the screenshot directory.
    """
    stem = name[:-4] if name.endswith(".png") else name
    if not _SCREENSHOT_NAME.fullmatch(stem):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '_' and '-' only")
    directory = output_directory() / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.png"
    page.screenshot(path=str(path), full_page=True, type="png")
    return path


_LAUNCH = pytest.StashKey[tuple[str, str, float, float]]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture(scope="session")
def browser(pytestconfig: pytest.Config) -> Iterator[Browser]:
    """Debian's Chromium, launched headless once for the session.

    Fails the test (never skips) when Chromium or Playwright is missing.
    """
    try:
        executable = chromium_executable()
    except ChromiumMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: `.venv/bin/pip install -e '.[test]'` (scripts/bootstrap.sh --test)",
                    pytrace=False)
    started = time.perf_counter()
    playwright = sync_playwright().start()  # the Node.js driver process
    driver_seconds = time.perf_counter() - started
    try:
        started = time.perf_counter()
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            headless=True,
            # Chromium refuses to start as root with its sandbox on ("Running as
            # root without --no-sandbox is not supported"), and CI runs the suite
            # as root in a container; the pages are the suite's own, on loopback.
            # With this, Playwright passes --no-sandbox. It always passes
            # --disable-dev-shm-usage too (a container's /dev/shm is often 64 MB,
            # too small for renderers), so no other flag is needed.
            chromium_sandbox=False,
            timeout=LAUNCH_TIMEOUT_MS,
        )
        seconds = time.perf_counter() - started
    except BaseException:
        playwright.stop()
        raise
    pytestconfig.stash[_LAUNCH] = (str(executable), browser.version, driver_seconds, seconds)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """`page(kind="desktop", locale="zh-CN", accept_language=None, **context_options)` -> Page.

    `kind` is "desktop" (1280x800) or "phone" (360x740, is_mobile, has_touch;
    pages need `<meta name="viewport" content="width=device-width">` to lay
    out at 360 px, as on a real phone). `locale` sets `navigator.language`
    and, unless `accept_language` is given, the `Accept-Language` header;
    `accept_language` sends that exact header value on every request instead
    (e.g. "en-US,en;q=0.9"; the page's HTTP cache is then off). Other keyword
    arguments go to `Browser.new_context` (`base_url`, `timezone_id`, ...).
    Each page has its own context (cookies, storage); all are closed after the
    test. Raises ValueError for an unknown kind.
    """
    contexts: list[BrowserContext] = []

    def open_page(kind: str = "desktop", locale: str = "zh-CN", accept_language: str | None = None,
                  **context_options: Any) -> Page:
        if kind not in DEVICES:
            raise ValueError(f"page kind {kind!r}: expected one of {sorted(DEVICES)}")
        device = DEVICES[kind]
        context = browser.new_context(
            viewport={"width": device.width, "height": device.height},
            screen={"width": device.width, "height": device.height},
            is_mobile=device.is_mobile,
            has_touch=device.has_touch,
            locale=locale,
            **context_options,
        )
        contexts.append(context)
        if accept_language is not None:
            # The locale's Accept-Language wins over extra_http_headers on navigations
            # (Playwright sets it through the user-agent override), so the header is
            # rewritten on every request instead. Routing turns off the HTTP cache.
            def with_language(route: Route) -> None:
                route.continue_(headers={**route.request.headers, "accept-language": accept_language})

            context.route("**/*", with_language)
        return context.new_page()

    yield open_page
    report = request.node.stash.get(_CALL_REPORT, None)
    try:
        if report is not None and report.failed:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:100] or "test"
            pages = [p for context in contexts for p in context.pages if not p.is_closed()]
            for number, failed_page in enumerate(pages, 1):
                try:
                    screenshot(failed_page, f"{stem}-{number}-failed")
                except Exception as error:  # the failure itself matters more than its picture
                    request.node.add_report_section("teardown", "screenshot", f"page {number}: {error}")
    finally:
        for context in contexts:
            context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A console test cannot forget the marker, so `-m "not browser"` always leaves it out.
    for item in items:
        if {"browser", "page"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    launch = config.stash.get(_LAUNCH, None)
    if launch is not None:
        executable, version, driver_seconds, seconds = launch
        terminalreporter.write_line(
            f"browser: Chromium {version} ({executable}) launched in {seconds:.2f} s "
            f"(Playwright driver {driver_seconds:.2f} s before it); screenshots in {output_directory() / 'screenshots'}"
        )
