"""The browser test support itself: Debian's Chromium, driven by Playwright,
opens a page served on loopback as a desktop and as a phone, runs its script,
reports the requested language and leaves a screenshot behind."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from tests.support.browser import screenshot

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>风险预警</title>
</head>
<body>
<h1>风险预警</h1>
<button type="button" id="ack" data-action="ack">确认</button>
<p id="state">未确认</p>
<script>
document.getElementById("ack").addEventListener("click", () => {
  document.getElementById("state").textContent = "已确认";
});
</script>
</body>
</html>
""".encode()


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    accept_languages: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path != "/":
            self.send_error(404)  # the browser also asks for /favicon.ico
            return
        self.server.accept_languages.append(self.headers.get("Accept-Language", ""))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # pytest shows stderr of failing tests; request lines would only bury the failure


@pytest.fixture
def site() -> Iterator[_Site]:
    server = _Site(("127.0.0.1", 0), _Handler)
    server.accept_languages = []
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _url(site: _Site) -> str:
    host, port = site.server_address[:2]
    return f"http://{host}:{port}/"


@pytest.mark.parametrize(
    ("kind", "locale", "width"),
    [("desktop", "zh-CN", 1280), ("phone", "zh-CN", 360), ("phone", "en", 360)],
)
def test_page_runs_script_at_its_size_and_language(page, site, kind, locale, width):
    opened = page(kind, locale=locale)
    opened.goto(_url(site))

    assert opened.locator("html").get_attribute("lang") == "zh-CN"
    assert opened.locator("#state").inner_text() == "未确认"
    if kind == "phone":
        opened.locator("[data-action=ack]").tap()
    else:
        opened.locator("[data-action=ack]").click()
    assert opened.locator("#state").inner_text() == "已确认"

    assert opened.evaluate("window.innerWidth") == width
    assert opened.evaluate("navigator.language") == locale
    assert opened.evaluate("matchMedia('(pointer: coarse)').matches") is (kind == "phone")
    assert site.accept_languages == [locale]

    shot = screenshot(opened, f"browser-support-{kind}-{locale}")
    assert shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accept_language_can_differ_from_locale(page, site):
    opened = page("desktop", locale="zh-CN", accept_language="en-US,en;q=0.9")
    opened.goto(_url(site))

    assert site.accept_languages == ["en-US,en;q=0.9"]
    assert opened.evaluate("navigator.language") == "zh-CN"


def test_screenshot_names_stay_in_the_screenshot_directory(page):
    opened = page()
    with pytest.raises(ValueError):
        screenshot(opened, "../outside")
