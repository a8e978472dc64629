"""Adding a ninth indicator takes one module and one rules entry
(docs/indicators.md): the rule loader checks the entry against the module's
spec, and the engine feeds it the events it consumes."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from riskwatch.engine.indicators import spec_of
from riskwatch.rules import RulesError, load_rules
from riskwatch.settings import default_rules_dir
from riskwatch.testing import Scenario

MODULE = Path(__file__).parent / "ninth" / "large_order_share.py"

ENTRY = """
  large_order_share:
    title: Single order large against the credit limit
    subject: customer
    threshold: {above: 0.5, unit: ratio}
    playbook: credit_tightening
    probability: {value: 0.5}
    impact:
      reference: customer_trailing_12m_purchases
      by_share: [{above: 0, value: 0.05}, {above: 0.10, value: 0.15}]
    controllability: {value: 0.6}
"""


def _load_module():
    if "large_order_share_indicator" not in sys.modules:
        spec = importlib.util.spec_from_file_location("large_order_share_indicator", MODULE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)


def _rules_with(tmp_path: Path, entry: str) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), directory)
    with (directory / "indicators.yaml").open("a", encoding="utf-8") as handle:
        handle.write(entry)
    return directory


def test_an_entry_without_a_module_is_refused_by_name(tmp_path):
    with pytest.raises(RulesError) as refused:
        load_rules(_rules_with(tmp_path, ENTRY.replace("large_order_share:", "no_such_indicator:")))
    assert any(problem.startswith("indicators.yaml: indicators.no_such_indicator: unknown indicator (known: ")
               for problem in refused.value.problems), refused.value.problems


def test_a_ninth_indicator_from_one_module_and_one_entry_alerts(tmp_path):
    _load_module()
    assert spec_of("large_order_share").consumes == ("order.placed",)
    rules = load_rules(_rules_with(tmp_path, ENTRY))
    scenario = Scenario(rules)
    scenario.feed(
        {"event_id": "p-1", "type": "customer.profile", "occurred_at": "2024-03-01T09:00:00+08:00",
         "customer_id": "C-9", "tier": "B", "region": "east", "credit_limit": "100000"},
        {"event_id": "o-1", "type": "order.placed", "occurred_at": "2024-03-02T09:00:00+08:00",
         "order_id": "SO-1", "customer_id": "C-9", "amount": "30000", "currency": "CNY"},
    )
    assert scenario.alert("large_order_share", "C-9") is None    # 0.3 of the limit: within
    scenario.feed(
        {"event_id": "o-2", "type": "order.placed", "occurred_at": "2024-03-03T09:00:00+08:00",
         "order_id": "SO-2", "customer_id": "C-9", "amount": "80000", "currency": "CNY"},
    )
    alert = scenario.alert("large_order_share", "C-9")
    assert alert is not None and alert["status"] == "open"
    assert alert["observed"] == 0.8 and alert["threshold"] == 0.5
    assert alert["evidence"] == ["o-2"]
    assert alert["playbook"]["id"] == "credit_tightening"
    assert alert["summary"].startswith("Single order large against the credit limit: order SO-2 of C-9")
    # The next order within the limit resolves it; the eight shipped indicators still run beside it.
    scenario.feed(
        {"event_id": "o-3", "type": "order.placed", "occurred_at": "2024-03-04T09:00:00+08:00",
         "order_id": "SO-3", "customer_id": "C-9", "amount": "20000", "currency": "CNY"},
    )
    assert scenario.alert("large_order_share", "C-9")["status"] == "resolved"
    assert set(scenario.engine.indicators) >= {"delivery_delay", "payment_overdue", "large_order_share"}


def test_the_entry_is_checked_against_the_modules_spec(tmp_path):
    _load_module()
    with pytest.raises(RulesError) as refused:
        load_rules(_rules_with(tmp_path, ENTRY.replace("unit: ratio", "unit: days")))
    assert "indicators.yaml: indicators.large_order_share.threshold.unit: must be 'ratio' for this indicator" \
        in refused.value.problems
