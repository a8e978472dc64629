"""`riskwatch run` on a terminal: the live summary a risk officer watches, and
the scrolling lines kept for pipes and `--lines`.

The console script runs under a real pseudo-terminal; what it writes goes
through a terminal emulator (pyte), and the tests read the screen as the
user would see it, not the escape sequences that drew it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pyte
import pytest

from riskwatch import testing as t
from tests.conftest import CONSOLE_SCRIPT, REPO, _environment

COLUMNS, ROWS = 140, 40

# An invoice due 1 March and unpaid 30 days later (orange, respond by 04:00),
# a shipment promised for 26 March and not delivered (blue, respond_by passed
# a day before), and one late order that moves the service clock to
# 31 March 02:00 (its time less the 10 minutes' allowed lateness).
EVENTS = [
    t.invoice_issued("INV-2024-0301", "ACME", "250000.00", due_at="2024-03-01T00:00:00Z",
                     at="2024-02-01T09:00:00Z", event_id="inv-1"),
    t.delivery_scheduled("SHP-7", "BOLT", promised_at="2024-03-26T00:00:00Z", at="2024-03-20T09:00:00Z",
                         event_id="ship-1"),
    t.order_placed("ORD-9", "CRANE", at="2024-03-31T02:10:00Z", event_id="order-1"),
]


class Terminal:
    """The console script with stdout and stderr on a pseudo-terminal of
    COLUMNS x ROWS, its output drawn on an emulated screen."""

    def __init__(self, *args: str):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = _environment()
        env["TERM"] = "xterm-256color"
        env.pop("NO_COLOR", None)
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        self.process = subprocess.Popen([str(CONSOLE_SCRIPT), *map(str, args)], stdin=subprocess.DEVNULL,
                                        stdout=slave, stderr=slave, env=env, cwd=REPO)
        os.close(slave)
        self.master = master
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.written = bytearray()

    def _read(self, timeout: float) -> bool:
        """Draw what arrived within `timeout` seconds; False once the program has closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            return False
        if not data:
            return False
        self.written += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, words: str, timeout: float = 20) -> str:
        """The screen once it shows `words`."""
        deadline = time.monotonic() + timeout
        while words not in self.text():
            assert time.monotonic() < deadline, f"{words!r} never shown; screen:\n{self.text()}"
            if not self._read(0.2):
                break
        assert words in self.text(), f"{words!r} not shown; screen:\n{self.text()}"
        return self.text()

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        """The exit status and the last screen."""
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            assert time.monotonic() < deadline, f"still running; screen:\n{self.text()}"
        status = self.process.wait(timeout=timeout)
        os.close(self.master)
        return status, self.text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def terminal():
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(*args))
        return started[-1]

    yield start
    for each in started:
        each.stop()


@pytest.fixture
def business(events_file):
    return events_file(EVENTS)


def run_args(business, tmp_path, *more: str) -> list[str]:
    return ["run", "--input", business, "--metrics-port", "0", "--console-port", "0", "--store-dir", tmp_path / "store",
            "--rate", "0", *more]


def line_with(screen: str, *words: str) -> str:
    found = [line for line in screen.splitlines() if all(word in line for word in words)]
    assert found, f"no line with {words}; screen:\n{screen}"
    return found[0]


def test_on_a_terminal_run_shows_what_needs_attention_instead_of_scrolling(terminal, business, tmp_path):
    status, screen = terminal(*run_args(business, tmp_path, "--exit-when-done")).finish()
    assert status == 0, screen
    address = line_with(screen, "metrics at ").split("metrics at ")[1].split()[0]

    # Open alerts by tier, the tier word beside its colour.
    tiers = line_with(screen, "open alerts")
    for tier, count in (("RED", 0), ("ORANGE", 1), ("YELLOW", 0), ("BLUE", 1)):
        assert f"{tier} {count}" in tiers, tiers
    # The most urgent first: the orange invoice, two hours left on the service
    # clock (31 March 02:00) before its respond-by at 04:00; then the blue
    # shipment, whose respond-by passed a day and two hours before.
    urgent = screen.split("most urgent", 1)[1].splitlines()
    rows = [line for line in urgent if line.startswith(("RED", "ORANGE", "YELLOW", "BLUE"))]
    assert len(rows) == 2, screen
    first, second = rows
    assert first.split()[:3] == ["ORANGE", "2", "h"], first
    assert "payment_overdue" in first and "invoice INV-2024-0301 (ACME)" in first
    assert "sales_leadership_group" in first
    assert second.startswith("BLUE") and "overdue 1 d 2 h" in second and "shipment SHP-7 (BOLT)" in second
    assert "service clock 2024-03-31 02:00 UTC" in screen
    assert "0 rejected" in screen
    console = line_with(screen, "console at ").split("console at ")[1].split()[0]
    serving = line_with(screen, "serving", "metrics")
    assert f"metrics {address}" in serving and f"console {console}" in serving
    # No line per alert change: the view replaced them.
    assert "respond by" not in screen
    # At exit the summary follows, as in line mode.
    assert "events: 3 read, 3 accepted" in screen
    assert "alerts open:     red 0, orange 1, yellow 0, blue 1" in screen


def test_after_the_input_the_summary_stays_while_run_serves_until_ctrl_c(terminal, business, tmp_path):
    running = terminal(*run_args(business, tmp_path))
    screen = running.wait_for("Ctrl-C to stop")
    assert "ORANGE 1" in line_with(screen, "open alerts")
    assert "still serving" in screen
    assert "events: 3 read" not in screen     # the summary is printed at exit, not while serving
    running.process.send_signal(signal.SIGINT)
    status, screen = running.finish()
    assert status == 0, screen
    assert "ORANGE 1" in line_with(screen, "open alerts")   # the last frame stays
    assert "events: 3 read, 3 accepted" in screen


def test_lines_on_a_terminal_scroll_one_line_per_alert_change(terminal, business, tmp_path):
    status, screen = terminal(*run_args(business, tmp_path, "--exit-when-done", "--lines")).finish()
    assert status == 0, screen
    changes = [line for line in screen.splitlines() if line.startswith(("RED", "ORANGE", "YELLOW", "BLUE"))]
    assert len(changes) == 2, screen
    # A change line is longer than the terminal is wide: it wraps, as it did before the live view.
    assert "owner sales_leadership_group" in line_with(screen, "ORANGE", "invoice INV-2024-0301")
    assert "respond by 2024-03-31 04:00" in screen
    assert "open alerts" not in screen and "most urgent" not in screen


def test_with_stdout_a_pipe_run_prints_one_line_per_alert_change(riskwatch, business, tmp_path):
    done = riskwatch(*run_args(business, tmp_path, "--exit-when-done"))
    assert done.returncode == 0, done.stderr
    changes = done.stdout.splitlines()
    assert len(changes) == 2, done.stdout
    assert changes[0].startswith("BLUE") and "shipment SHP-7 (BOLT)" in changes[0]
    assert changes[1].startswith("ORANGE") and "invoice INV-2024-0301 (ACME)" in changes[1]
    assert "respond by 2024-03-31 04:00" in changes[1]
    assert "\033[" not in done.stdout
    assert "open alerts" not in done.stdout + done.stderr
