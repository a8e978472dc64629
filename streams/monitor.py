"""faust's Prometheus sensor without its per-record bookkeeping.

faust calls its monitor four times for every record a stream reads (message
in, event in, event out, message out) and once more per fetched record for
the partition's end offset. `PrometheusMonitor` turns each call into
labelled metric updates and timing dictionaries; on a worker draining a
backlog that was a tenth of the event loop's time, more than the engine's
parsing. riskwatch counts what those calls counted in its own
`riskwatch_events_*` families, per batch, so here they do nothing; the
series operators read (end and committed offset per partition, hence
consumer lag; commit latency; rebalances; send errors) are kept.
"""

from __future__ import annotations

from typing import Any, Optional

from faust.sensors.prometheus import PrometheusMonitor


class WorkerMonitor(PrometheusMonitor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._end_offset_gauges: dict[Any, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Optional[dict]:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Optional[dict] = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        # Called for every fetched record: the labelled child is looked up once per partition.
        gauge = self._end_offset_gauges.get(tp)
        if gauge is None:
            gauge = self._end_offset_gauges[tp] = self._metrics.topic_partition_end_offset.labels(
                topic=tp.topic, partition=tp.partition)
        self.tp_end_offsets[tp] = offset
        gauge.set(offset)
