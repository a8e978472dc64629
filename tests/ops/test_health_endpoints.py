"""The endpoints the manifests point probes and scrapes at, served by the
real processes: Kubernetes probes and Prometheus scrapes carry no API token,
so these must answer without one."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.ops import KUBERNETES_DIR
from tests.support.prometheus import free_port, stop_process, wait_for

RISKWATCH = Path(sys.executable).with_name("riskwatch")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _api_probe_paths() -> set[str]:
    (deployment,) = [d for d in yaml.safe_load_all((KUBERNETES_DIR / "api.yaml").read_text())
                     if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {container[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")}


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("api")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(RISKWATCH_API_TOKENS="ops-token-0123456789:operator", RISKWATCH_STORE_DIR=str(workdir / "store"))
    log = (workdir / "api.log").open("wb")
    process = subprocess.Popen([str(RISKWATCH), "api", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is None and _get(url + "/openapi.json")[0] == 200, 30, what="the API up")
        yield url
    finally:
        stop_process(process)
        log.close()


@pytest.mark.api
def test_api_probe_paths_answer_without_a_token(api_url):
    for path in _api_probe_paths():
        status, body = _get(api_url + path)
        assert status == 200, f"GET {path} without a token: {status} {body[:200]!r}"


@pytest.mark.api
def test_api_metrics_are_scrapable_without_a_token(api_url):
    status, body = _get(api_url + "/metrics")
    assert status == 200, f"GET /metrics without a token: {status} {body[:200]!r}"
    assert b'riskwatch_up{component="api"} 1.0' in body
