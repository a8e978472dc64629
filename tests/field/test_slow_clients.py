"""Issue 13, "Hostile or broken input to the API": slow clients.

Found: a connection sending partial headers, or a partial body with a valid
token, was held 40 s and more (uvicorn has no request read timeout; its
keep-alive timer restarts on every byte). Right: header and body read
deadlines of a few seconds, configurable (RISKWATCH_API_HEADER_TIMEOUT_SECONDS,
RISKWATCH_API_BODY_TIMEOUT_SECONDS). Against the real `riskwatch api`, with
1 s deadlines; each case bounded by a few seconds.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from support.alertmanager import free_port
from support.api import running_api

pytestmark = [pytest.mark.api, pytest.mark.slow]

OFFICER = "officer-token-0123456789"
DEADLINE = 1.0
HELD_AT_MOST = DEADLINE + 2.0  # the deadline, plus scheduling slack on a busy machine


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api(free_port(), RISKWATCH_API_TOKENS=f"{OFFICER}:officer",
                     RISKWATCH_STORE_DIR=str(tmp_path_factory.mktemp("store")), RISKWATCH_LOG_LEVEL="WARNING",
                     RISKWATCH_API_HEADER_TIMEOUT_SECONDS=str(DEADLINE),
                     RISKWATCH_API_BODY_TIMEOUT_SECONDS=str(DEADLINE),
                     RISKWATCH_API_MAX_BODY_BYTES="1000") as url:
        host, port = url.removeprefix("http://").split(":")
        yield url, (host, int(port))


def held_for(address, first: bytes, trickle: bytes = b"", every: float = 0.25) -> tuple[float, bytes]:
    """Send `first`, then one byte of `trickle` every `every` seconds; how
    long until the server closed the connection, and what it answered."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(first)
        sock.settimeout(every)
        remaining = list(trickle)
        while time.monotonic() - started < HELD_AT_MOST + 3:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if remaining:
                    try:
                        sock.sendall(bytes([remaining.pop(0)]))
                    except OSError:
                        break
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return time.monotonic() - started, answer


def test_a_connection_that_sends_nothing_is_closed(api):
    _, address = api
    held, _ = held_for(address, b"")
    assert held < HELD_AT_MOST


def test_partial_headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline(api):
    _, address = api
    held, answer = held_for(address, b"GET /v1/alerts HTTP/1.1\r\nHost: riskwatch\r\n", trickle=b"X-Slow: " + b"a" * 60)
    assert held < HELD_AT_MOST and answer.startswith(b"HTTP/1.1 408")


def test_a_partial_body_with_a_valid_token_is_cut_at_the_deadline(api):
    _, address = api
    head = (f"POST /v1/alerts/al-x/comments HTTP/1.1\r\nHost: riskwatch\r\nAuthorization: Bearer {OFFICER}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode()
    held, answer = held_for(address, head + b'{"reason": "', trickle=b"s" * 60)
    assert held < HELD_AT_MOST and answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_the_body_limit_is_a_setting_and_prompt_clients_are_served(api):
    url, _ = api
    H = {"Authorization": f"Bearer {OFFICER}"}
    assert httpx.post(url + "/v1/alerts/al-x/comments", json={"reason": "x" * 2000}, headers=H).status_code == 413
    with httpx.Client(base_url=url, headers=H) as client:  # one kept-alive connection, several requests
        for _ in range(3):
            assert client.get("/v1/alerts").status_code == 200
            time.sleep(DEADLINE * 1.2)  # idle between requests is the keep-alive timer's, not the header deadline
