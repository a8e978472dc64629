"""One module per indicator, named by its id (docs/indicators.md).

Each module declares its `IndicatorSpec` (subject, unit, parameters, the
facts it consumes, how it is evaluated) and its `Indicator` class,
registered by id; the rule loader checks each indicators.yaml entry against
the spec, and the engines evaluate every indicator through the interface of
`riskwatch.engine.indicators.base`. Scheduled evaluations go through the one
`Scheduler` (riskwatch/engine/indicators/scheduler.py).
"""

from riskwatch.engine.indicators.base import (
    ON_DEADLINE,
    ON_FACT,
    ON_SCHEDULE,
    Context,
    Indicator,
    IndicatorSpec,
    UnknownIndicator,
    register,
    registered,
    spec_of,
)

__all__ = ["ON_DEADLINE", "ON_FACT", "ON_SCHEDULE", "Context", "Indicator", "IndicatorSpec", "UnknownIndicator",
           "register", "registered", "spec_of"]
