"""The real Prometheus server, started for a test and stopped after it.

`PrometheusServer.start(config, workdir)` writes `config` (a parsed
prometheus.yml) into `workdir`, runs `/usr/bin/prometheus` on a free loopback
port with its TSDB in `workdir`, and waits until it is ready. The methods wrap
the parts of the HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/)
the tests use. Relative `rule_files` must be made absolute by the caller:
Prometheus resolves them against the config file's directory.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback only)
        return response.read()


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception as exc:  # noqa: BLE001 (polling a server that is starting)
            last_error = exc
            result = None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s (last error: {last_error!r})")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PrometheusError(RuntimeError):
    pass


@dataclass
class PrometheusServer:
    process: subprocess.Popen
    port: int
    workdir: Path
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, config: dict, workdir: Path, timeout: float = 30.0) -> "PrometheusServer":
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        log_path = workdir / "prometheus.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = cls(process=process, port=port, workdir=workdir, log_path=log_path, _log=log)
        try:
            wait_for(server._ready, timeout, what=f"Prometheus ready on port {port}")
        except Exception:
            server.stop()
            raise PrometheusError(f"Prometheus did not start; its log:\n{server.log()}") from None
        return server

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise PrometheusError(f"Prometheus exited with {self.process.returncode}:\n{self.log()}")
        return http_get(self.url + "/-/ready").strip().endswith(b"Ready.")

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- HTTP API ----------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            body = http_get(url, timeout=10)
        except urllib.error.HTTPError as exc:
            body = exc.read()
        reply = json.loads(body)
        if reply.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {reply.get('errorType')}: {reply.get('error')}")
        return reply["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; returns the result vector (scalars as one unlabelled sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, expr: str) -> float | None:
        """The first sample's value of an instant query, None when empty."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]

    def rules_evaluated_since(self, instant: float) -> bool:
        """Every loaded rule has been evaluated at or after `instant` (Unix time)."""
        for group in self.rule_groups():
            for rule in group["rules"]:
                last = rule.get("lastEvaluation", "")
                if not last or last.startswith("0001"):
                    return False
                # RFC 3339 with nanoseconds: keep microseconds for fromisoformat.
                stamp = re.sub(r"(\.\d{6})\d*", r"\1", last).replace("Z", "+00:00")
                if datetime.fromisoformat(stamp).timestamp() < instant:
                    return False
        return True

    def alerts_of(self, alertname: str) -> list[dict]:
        """Active (pending or firing) instances of an alerting rule."""
        for group in self.rule_groups():
            for rule in group["rules"]:
                if rule["name"] == alertname:
                    return rule.get("alerts", [])
        raise PrometheusError(f"no rule {alertname} loaded")

    def label_values(self, label: str, match: str) -> list[str]:
        return self.api(f"label/{label}/values", **{"match[]": match})

    def reload(self) -> None:
        request = urllib.request.Request(self.url + "/-/reload", method="POST")
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
