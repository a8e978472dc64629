"""The rule engine: plain Python over a state mapping; no faust here."""

from riskwatch.engine.aggregates import SegmentEngine
from riskwatch.engine.alertbook import alert_id_for
from riskwatch.engine.core import Engine, Outcome

__all__ = ["Engine", "Outcome", "SegmentEngine", "alert_id_for"]
