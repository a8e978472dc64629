"""The loop of `riskwatch run`, once the command has wired it.

Feeds records (a simulation or an `--input` file) to an `EmbeddedService`
at a given pace, ticks the pipeline's timers every few seconds (the desk
records what the service clock made due and keeps that clock in the store
for the API; open alerts are re-sent to Alertmanager before their endsAt),
redraws the live view, and after the input serves until stopped (SIGINT,
SIGTERM). The command line (riskwatch/cli/core.py) parses options, wires the
service, the view and the servers, and turns errors into exit statuses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from riskwatch.cli.live import LiveView
    from riskwatch.service import EmbeddedService

# How often the pipeline's timers run: escalations are counted in hours, and
# Alertmanager's endsAt is minutes ahead (riskwatch.sinks.alertmanager).
TICK_SECONDS = 5.0
# Records fed between two looks at the pace (one clock read per 50 records).
PACE_EVERY = 50


class RunLoop:
    """Feed, tick, serve: `riskwatch run` after wiring.

    `service`: the embedded service (its pipeline holds the desk and the
    Alertmanager sink). `rate`: records per second to feed at most (0: as
    fast as they come). `view`: the live view, redrawn as records are fed,
    or None (scrolling lines). `say(text)`: a line for the person running
    it (stderr); `report()`: print the summary so far.

    `stop()` (a signal handler) ends feeding after the current record and
    ends serving. `line` is the number of the last record read, for an error
    message. `run` raises what reading the input raises (OSError) and what
    the desk's store raises (StoreError); what was recorded stays.
    """

    def __init__(self, service: "EmbeddedService", *, rate: float = 0.0, view: "LiveView | None" = None,
                 say: Callable[[str], None] = print, report: Callable[[], None] = lambda: None,
                 tick_seconds: float = TICK_SECONDS, sleep: Callable[[float], None] = time.sleep):
        self.service = service
        self.rate = rate
        self.view = view
        self.say = say
        self.report = report
        self.tick_seconds = tick_seconds
        self.sleep = sleep
        self.stopping = False
        self.line = 0
        self._ticked = time.monotonic()

    def stop(self, *_signal: object) -> None:
        """Stop feeding and serving (usable as a signal handler)."""
        self.stopping = True

    def tick(self, final: bool = False) -> None:
        """The pipeline's timers, at most every `tick_seconds` (always when `final`)."""
        if final or time.monotonic() - self._ticked > self.tick_seconds:
            self.service.tick()
            self._ticked = time.monotonic()

    def feed(self, records: Iterable[tuple[int, bytes]], label: str, unit: str = "line") -> int:
        """Feed (number, raw record) pairs from `label` until they end or
        `stop()`; returns how many were fed. `unit`: what the numbers count
        ("line" of a file, "row" of an export), for the report."""
        service, view, rate = self.service, self.view, self.rate
        started = time.monotonic()
        fed = 0
        for number, line in records:
            self.line = number
            if self.stopping:
                break
            fed += 1
            service.feed(line, label, number, unit=unit)
            self.tick()
            if view is not None:
                view.tick()
            if rate > 0 and fed % PACE_EVERY == 0:
                ahead = fed / rate - (time.monotonic() - started)
                if ahead > 0:
                    self.sleep(ahead)
        return fed

    def run(self, records: Iterable[tuple[int, bytes]], label: str, serving: str | None = None,
            unit: str = "line") -> None:
        """Feed `records`, report, then (with `serving`, the line that says
        what is still served) serve until stopped, ticking; report again at
        the end when the live view held the summary."""
        view = self.view
        self.feed(records, label, unit)
        self.tick(final=True)  # the clock where the input ended, not where it was a few seconds before
        if view is None:
            self.say("")
            self.report()
        else:
            view.status("stopped" if self.stopping else "input done")
        if serving is not None and not self.stopping:
            if view is not None:
                view.status(serving)
            else:
                self.say(serving)
            while not self.stopping:
                self.sleep(0.2)
                self.tick()
                if view is not None:
                    view.tick()
        if view is not None:
            # The view held the summary while serving; at exit it is printed as in line mode.
            view.stop()
            self.say("")
            self.report()
        if self.stopping:
            self.say("riskwatch run: stopped (signal); what was recorded stays in the store")


__all__ = ["PACE_EVERY", "RunLoop", "TICK_SECONDS"]
