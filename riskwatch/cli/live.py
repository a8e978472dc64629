"""The live summary `riskwatch run` shows on a terminal: what needs a person now.

Instead of one scrolling line per alert change, a terminal gets one screen,
redrawn a few times a second at most: open alerts by tier, the most urgent
open alerts with the time left to their respond_by on the service clock
(the engine's watermark, DOMAIN §4), the event and alert-change rates, the
rejected count and the addresses `run` serves.

The view costs the event loop two things per event: a dict update per alert
change (`LiveView.record`, a sink) and a clock read (`LiveView.tick`). The
redraw itself runs on the caller's thread, so nothing reads the service's
state while it changes, and only when `every` seconds have passed.
"""

from __future__ import annotations

import atexit
import heapq
import sys
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from riskwatch.contracts import TIER_NAMES as TIER_ORDER

if TYPE_CHECKING:  # imported for annotations only: run builds both before the view starts
    from riskwatch.alerts.desk import AlertDesk
    from riskwatch.service import EmbeddedService

# The same hues as the scrolling lines (riskwatch.render.COLOURS), so a tier
# looks alike in both views; the tier word is always printed beside the colour.
TIER_STYLES = {"red": "bold red", "orange": "color(208)", "yellow": "yellow", "blue": "cyan"}
_URGENCY = {tier: index for index, tier in enumerate(TIER_ORDER)}  # red 0 ... blue 3: most urgent first
# Rates are measured over the last few seconds: per redraw they jump with the
# simulation's bursts; over a minute they lag behind a stalled input.
_RATE_WINDOW_SECONDS = 3.0
# Lines the view needs besides the urgent rows (headline, tiers, table head, addresses, status, borders).
_FIXED_LINES = 9


def time_left(respond_by: float, clock: float) -> str:
    """The time from the service clock `clock` to `respond_by` (both Unix
    seconds) as a person reads it: "3 d 4 h", "2 h 15 min", "45 min",
    "< 1 min", or "overdue 2 h 5 min" once the clock has passed it."""
    seconds = respond_by - clock
    if seconds < 0:
        return "overdue " + _duration(-seconds)
    return _duration(seconds)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "< 1 min"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _seconds(text: str | None) -> float:
    # An open alert always has a respond_by (DOMAIN §5); one without sorts last.
    return datetime.fromisoformat(text).timestamp() if text else float("inf")


class LiveView:
    """The live summary of `riskwatch run`, drawn on `stream` (stdout by default).

    `served` is the list of (label, URL) pairs shown under "serving"; it is
    read at every redraw, so a caller may append to it (a console's address,
    say) before or after `start`. `colour` False draws without colours (the
    tier words stay). `every` is the least time between two redraws, in
    seconds; `urgent` the most urgent alerts shown at most (fewer when the
    terminal is short).

    Use: `record` as a sink of alert change records (it keeps the open
    alerts, by alert_id, from the same changes the scrolling lines print);
    `start(service, desk)` once the service exists; `tick()` from the event
    loop (cheap: it redraws only when `every` has passed); `status(text)`
    for the line under the view; `stop()` leaves the last frame on screen.
    """

    def __init__(self, served: list[tuple[str, str]], *, colour: bool = True, stream: TextIO | None = None,
                 every: float = 0.5, urgent: int = 8):
        self.served = served
        self.every = every
        self.urgent = urgent
        # alert_id -> sort key (urgency, respond_by seconds, alert_id) and the record.
        self._open: dict[str, tuple[int, float, str, dict]] = {}
        self._status = "reading input"
        self._service: EmbeddedService | None = None
        self._desk: AlertDesk | None = None
        self._samples: deque[tuple[float, int, int]] = deque()
        self._next_draw = 0.0
        self.console = Console(file=stream, no_color=not colour, highlight=False)
        self._live: Live | None = None

    # ------------------------------------------------------------------ feeding

    def record(self, record: dict) -> None:
        """Follow one alert change record (a sink of EmbeddedService)."""
        alert_id = record["alert_id"]
        if record["status"] == "open":
            self._open[alert_id] = (_URGENCY[record["tier"]], _seconds(record.get("respond_by")), alert_id, record)
        else:
            self._open.pop(alert_id, None)

    def start(self, service: EmbeddedService, desk: AlertDesk | None = None) -> None:
        """Start drawing: counts, clock and rates come from `service`; the
        owner and work status of the urgent rows from `desk` when given (an
        unacknowledged alert's owner moves up the chain past respond_by)."""
        self._service, self._desk = service, desk
        # Other output (the log, warnings) prints above the view instead of
        # through it; stderr only when it is this same terminal, so a
        # redirected stderr still gets its own lines.
        self._live = Live(self._frame(time.monotonic()), console=self.console, auto_refresh=False,
                          redirect_stdout=True, redirect_stderr=sys.stderr.isatty())
        self._live.start(refresh=True)
        # A crash must not leave the terminal without its cursor.
        atexit.register(self.stop)

    def tick(self) -> None:
        """Redraw if `every` seconds have passed since the last redraw."""
        now = time.monotonic()
        if now >= self._next_draw and self._live is not None:
            self._next_draw = now + self.every
            self._live.update(self._frame(now), refresh=True)

    def status(self, text: str) -> None:
        """Set the line under the view ("input done; still serving ...") and redraw."""
        self._status = text
        self._next_draw = 0.0
        self.tick()

    def stop(self) -> None:
        """Draw the last frame and leave it on screen; safe to call twice."""
        if self._live is not None:
            live, self._live = self._live, None
            live.update(self._frame(time.monotonic()), refresh=True)
            live.stop()

    # ------------------------------------------------------------------ drawing

    def most_urgent(self, count: int) -> list[dict]:
        """The `count` most urgent open alert records: highest tier first,
        then the earliest respond_by. O(open alerts) per call, no sort of all."""
        return [entry[3] for entry in heapq.nsmallest(count, self._open.values())]

    def _rates(self, now: float, records: int, changes: int) -> tuple[float, float]:
        samples = self._samples
        samples.append((now, records, changes))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_WINDOW_SECONDS:
            samples.popleft()
        first = samples[0]
        elapsed = now - first[0]
        if elapsed <= 0:
            return 0.0, 0.0
        return (records - first[1]) / elapsed, (changes - first[2]) / elapsed

    def _frame(self, now: float) -> Group:
        service = self._service
        if service is None:
            return Group(Text("riskwatch run: starting"))
        summary = service.summary
        events_per_s, changes_per_s = self._rates(now, summary.records, summary.changes)
        watermark = service.engine.watermark
        clock = watermark.timestamp() if watermark is not None else None
        rejected = sum(summary.rejected_by_kind.values())

        head = Text()
        head.append("riskwatch run", style="bold")
        head.append(f"   service clock {watermark:%Y-%m-%d %H:%M} UTC" if watermark else "   service clock not started")
        head.append(f"   {events_per_s:,.0f} events/s   {changes_per_s:,.1f} alert changes/s")
        head.append(f"   {summary.records:,} read   ")
        head.append(f"{rejected:,} rejected", style="bold" if rejected else "")

        tiers = Text("open alerts  ")
        for tier in TIER_ORDER:
            tiers.append(f" {tier.upper()} {summary.open_by_tier.get(tier, 0):,} ", style=TIER_STYLES[tier])
            tiers.append("  ")
        tiers.append(f"({len(self._open):,} open)")

        rows = max(1, min(self.urgent, self.console.size.height - _FIXED_LINES))
        table = Table(title="most urgent", title_justify="left", expand=False, box=None, pad_edge=False,
                      show_edge=False)
        for column in ("tier", "time left", "indicator", "subject", "owner", "status"):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for record in self.most_urgent(rows):
            tier = record["tier"]
            respond_by = _seconds(record.get("respond_by"))
            left = time_left(respond_by, clock) if clock is not None else "-"
            owner, work = record["owner"], "open"
            if self._desk is not None and watermark is not None:
                item = self._desk.alert(record["alert_id"], watermark)
                if item is not None:
                    owner, work = item.get("owner") or owner, item.get("status") or work
            # Text, not str: ids come from the input, and rich would read "[...]" in a str as markup.
            table.add_row(Text(tier.upper(), style=TIER_STYLES[tier]),
                          Text(left, style="bold red" if left.startswith("overdue") else ""),
                          Text(record["indicator"]), Text(_subject(record["subject"])), Text(owner), Text(work))
        if not self._open:
            table.add_row(Text(""), Text("none open"))

        serving = Text("serving  ")
        serving.append("   ".join(f"{label} {url}" for label, url in self.served))
        return Group(head, tiers, Text(""), table, Text(""), serving, Text(self._status, style="dim"))


def _subject(subject: dict) -> str:
    about = f"{subject['kind']} {subject['id']}"
    if subject.get("customer_id") and subject["customer_id"] != subject["id"]:
        about += f" ({subject['customer_id']})"
    return about
