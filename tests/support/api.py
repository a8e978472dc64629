"""A real `riskwatch api` process for tests: started with a clean RISKWATCH_
environment plus what the test gives, waited for until it answers, stopped
with SIGTERM (killed if it does not stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

RISKWATCH = str(Path(sys.executable).with_name("riskwatch"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(extra)
    return env


@contextmanager
def running_api(port: int, timeout: float = 30, **environment: str) -> Iterator[str]:
    """Yields the API's base URL once it serves its OpenAPI document."""
    # Its log goes to a file, not a pipe nobody drains while it runs: a full
    # pipe would block every thread of the API that logs (kafka-python logs
    # a line per metadata retry while a broker is down).
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([RISKWATCH, "api", "--host", "127.0.0.1", "--port", str(port)],
                               env=clean_env(**environment), stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError("riskwatch api exited: " + log.read().decode(errors="replace")[-4000:])
            try:
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("riskwatch api did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
