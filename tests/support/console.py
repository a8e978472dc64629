"""The console as a person's browser reaches it, without a browser: an
httpx client that keeps the session cookie, reads the CSRF token from the
page and posts forms with this site's Origin, against a real `riskwatch
api` process over a store that a real `riskwatch run` filled."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from support.api import clean_env

RISKWATCH = str(Path(sys.executable).with_name("riskwatch"))
TOKENS = {
    "officer": "tok-officer-0123456789",
    "director": "tok-director-0123456789",
    "operator": "tok-operator-0123456789",
    "readonly": "tok-readonly-0123456789",
}
TOKENS_ENV = ",".join(f"{token}:{role}" for role, token in TOKENS.items())


def filled_store(directory: Path, days: int = 120, seed: int = 7) -> Path:
    """A workflow store filled by `riskwatch run` over a simulated business
    (its alerts and its service clock), at directory/'store'."""
    store = directory / "store"
    result = subprocess.run(
        [RISKWATCH, "run", "--days", str(days), "--seed", str(seed), "--rate", "0", "--exit-when-done", "--quiet",
         "--no-console", "--metrics-port", "0", "--store-dir", str(store)],
        env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return store


def copy_store(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


class Browserless:
    """One person's session: `sign_in(role)`, `get(path)`, `post(path, **fields)`
    (the page's CSRF token added unless given), `alert_ids(page)`."""

    def __init__(self, url: str, language: str | None = None):
        self.url = url.rstrip("/")
        headers = {"Accept-Language": language} if language else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30, follow_redirects=False)
        self.csrf: str | None = None

    def sign_in(self, role: str, name: str | None = None) -> httpx.Response:
        response = self.http.post("/console/login", data={"token": TOKENS[role], "name": name or ""},
                                  headers={"Origin": self.url})
        self.get("/console/")
        return response

    def get(self, path: str, **kw) -> httpx.Response:
        response = self.http.get(path, **kw)
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return response

    def post(self, path: str, origin: str | None = None, **fields) -> httpx.Response:
        fields.setdefault("csrf", self.csrf or "")
        return self.http.post(path, data=fields, headers={"Origin": origin or self.url})

    def close(self) -> None:
        self.http.close()


def alert_ids(page: str) -> list[str]:
    return re.findall(r'data-alert-id="([^"]+)"', page)


def actions(page: str) -> set[str]:
    return set(re.findall(r'data-action="([^"]+)"', page))


def text_of(page: str) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()
