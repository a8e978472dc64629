"""What every indicator is: a spec the rule loader checks entries against, and
one small interface the engines evaluate it through.

An indicator is evaluated in one or more of three ways (docs/indicators.md):

- **on a fact**: `consumes` names the event types (or segment fact kinds) it
  reads; the engine calls `on_event` after the event's facts are stored;
- **on a deadline**: an absence condition ("undelivered 72 h after the
  promise") returns the instant it must be looked at again; the engine's
  deadline index calls back when the clock passes it;
- **on a schedule**: an indicator with `evaluate_every` (a group or a
  customer measured as of an instant) is evaluated by the one `Scheduler`
  at every scheduled instant the clock has passed.

Whatever the way, an indicator returns `Finding`s (riskwatch/engine/alertbook.py):
a pure description of a subject's risk; the alert book turns them into alert
change records. Texts take their windows and thresholds from the rules
(`riskwatch.units.span`), never a number written in the module.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, MutableMapping

from riskwatch.errors import RiskwatchError

if TYPE_CHECKING:  # the rule loader imports this module: only types from it here
    from riskwatch.engine.alertbook import AlertBook, Finding
    from riskwatch.rules.loader import CompiledIndicator, RuleSet

ON_FACT, ON_DEADLINE, ON_SCHEDULE = "on a fact", "on a deadline", "on a schedule"


# The facts the entity engine hands the segment engine (docs/contracts-internal.md);
# an indicator consuming one of them is evaluated where the segment is.
SEGMENT_FACTS = frozenset({"activity", "left", "receivable", "receivable_left", "sale"})


def takes_segment_facts(spec: "IndicatorSpec") -> bool:
    """Whether an indicator belongs to the segment engine (it reads segment facts)."""
    return not SEGMENT_FACTS.isdisjoint(spec.consumes)


class UnknownIndicator(RiskwatchError, LookupError):
    """An indicator id no module declares (`spec_of`, `create`)."""


@dataclass(frozen=True)
class IndicatorSpec:
    """What a rules entry for this indicator must say, and how it is evaluated.

    `subject`: what an alert is about (shipment, invoice, price, customer,
    segment, target); `unit`: the unit of the observed value and threshold
    (hours, days, ratio); `params`: the parameters it understands, with their
    defaults (durations as text such as "90d", converted to seconds by the
    loader when named in `duration_params`); `references`: the business
    references an impact share may be measured against
    (rules/indicators.yaml `impact.reference`); `evaluate_every`: the default
    schedule ("1d"), None for an indicator evaluated on facts and deadlines;
    `consumes`: the event types or segment fact kinds it reads;
    `evaluated`: one or more of ON_FACT, ON_DEADLINE, ON_SCHEDULE;
    `grows_while_open`: the observed value is the time elapsed since an
    instant (a due date, a promised delivery), so while its alert stays open
    it grows one unit per unit of clock; the engine records it at each
    scoring step only, and screens show it as of their own clock
    (`riskwatch.alerts.desk.describe_reading`)."""

    id: str
    subject: str
    unit: str
    evaluated: tuple[str, ...]
    consumes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    duration_params: frozenset[str] = frozenset()
    references: tuple[str, ...] = ()
    evaluate_every: str | None = None
    grows_while_open: bool = False


@dataclass
class Context:
    """What an indicator may use: the rules, the state mapping (its own records
    and the engine's facts), the alert book (`has_alert`, `current`), and
    `schedule(deadline_ts, key)` to be called back through `on_deadline` when
    the clock passes an instant (Unix seconds; the key must start with the
    indicator's id and a colon). `lateness` is the allowed lateness in
    seconds; `facts` the entity engine's read access to what it keeps
    (`customer(id)`, `invoice(id)`, `rates`), None in the segment engine."""

    rules: "RuleSet"
    state: MutableMapping[str, object]
    book: "AlertBook"
    schedule: Callable[[float, str], None]
    lateness: float = 600.0
    facts: Any = None


class Indicator:
    """One indicator. A subclass sets `spec` and implements the hooks its
    `spec.evaluated` names; the engines call nothing else.

    `indicator` is the compiled rules entry (threshold, params with durations
    in seconds, scores, `evaluate_every` in seconds); `context` the `Context`."""

    spec: ClassVar[IndicatorSpec]

    def __init__(self, indicator: "CompiledIndicator", context: Context):
        self.indicator = indicator
        self.context = context

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def every(self) -> float | None:
        """Seconds between scheduled evaluations, None when not scheduled (or switched off)."""
        if not self.indicator.enabled or ON_SCHEDULE not in self.spec.evaluated:
            return None
        return self.indicator.evaluate_every or None

    def on_event(self, event: Any, ts: float, now: float | None) -> Iterable["Finding"]:
        """Findings on an event of a type in `spec.consumes` (event time `ts`,
        clock `now`, both Unix seconds), after the engine stored its facts."""
        return ()

    def on_deadline(self, key: str, now: float) -> Iterable["Finding"]:
        """Findings when the clock passes a deadline this indicator scheduled under `key`."""
        return ()

    def evaluate(self, as_of: float) -> Iterable["Finding"]:
        """Findings of a scheduled evaluation as of `as_of` (Unix seconds): every
        fact up to that instant has arrived when the clock passes it."""
        return ()

    def rebuild(self) -> None:
        """Re-derive in-memory indexes from the state mapping (after recovery)."""


_REGISTRY: dict[str, type[Indicator]] = {}
_DISCOVERED = False


def register(cls: type[Indicator]) -> type[Indicator]:
    """Class decorator: make an indicator known by its `spec.id` to the rule
    loader and the engines. The built-in indicators are the modules of this
    package, one per id, found at first use; another module registers by
    being imported before the rules are loaded."""
    _REGISTRY[cls.spec.id] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = importlib.import_module("riskwatch.engine.indicators")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "scheduler"):
            importlib.import_module(f"riskwatch.engine.indicators.{module.name}")


def registered() -> dict[str, IndicatorSpec]:
    """Every known indicator's spec, by id (the built-in eight and any registered)."""
    _discover()
    return {indicator_id: cls.spec for indicator_id, cls in _REGISTRY.items()}


def spec_of(indicator_id: str) -> IndicatorSpec:
    """The spec of one indicator; raises UnknownIndicator."""
    _discover()
    try:
        return _REGISTRY[indicator_id].spec
    except KeyError:
        raise UnknownIndicator(indicator_id) from None


def create(rules: "RuleSet", context: Context, only: Callable[[IndicatorSpec], bool] = lambda spec: True) -> dict[str, Indicator]:
    """The indicators of a rule set (every entry of indicators.yaml, in its
    order) for which `only(spec)` holds, built over `context`; raises
    UnknownIndicator for an entry no module declares (the loader refuses
    such an entry first)."""
    _discover()
    built: dict[str, Indicator] = {}
    for indicator_id, compiled in rules.indicators.items():
        cls = _REGISTRY.get(indicator_id)
        if cls is None:
            raise UnknownIndicator(indicator_id)
        if only(cls.spec):
            built[indicator_id] = cls(compiled, context)
    return built
