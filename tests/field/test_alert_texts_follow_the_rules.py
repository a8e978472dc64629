"""An alert's text states the window its rule file configures.

A risk officer who shortens the churn window to 60 days, the key-account
comparison to 45 days or the collection window to 14 days must not read
"without an order for 90 days" or "due in 30 days" in the alerts: the text
said the seed plan's figures whatever the rule files held."""

from __future__ import annotations

import re

def test_alert_texts_name_the_windows_the_rule_files_configure(riskwatch, rules_copy, tmp_path):
    rules = rules_copy
    text = (rules / "indicators.yaml").read_text()
    text = text.replace("churn_after: 90d", "churn_after: 60d", 1)
    text = re.sub(r"(key_account_decline:.*?window: )90d", r"\g<1>45d", text, count=1, flags=re.S)
    text = re.sub(r"(collection_rate:.*?window: )30d", r"\g<1>14d", text, count=1, flags=re.S)
    (rules / "indicators.yaml").write_text(text)
    events = tmp_path / "business.jsonl"
    simulated = riskwatch("simulate", "--days", "400", "--seed", "11", "-o", str(events), timeout=300)
    assert simulated.returncode == 0, simulated.stderr

    replayed = riskwatch("replay", str(events), "--rules", str(rules), timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    summaries: dict[str, set[str]] = {}
    for record in replayed.records:
        summaries.setdefault(record["indicator"], set()).add(record["summary"])
    churn = summaries.get("customer_churn_rate", set())
    decline = summaries.get("key_account_decline", set())
    collection = summaries.get("collection_rate", set())
    assert churn and decline and collection, sorted(summaries)
    assert all("without an order for 60 days" in s for s in churn), sorted(churn)[:3]
    assert all("ordered in 45 days" in s for s in decline), sorted(decline)[:3]
    assert all("due in 14 days" in s for s in collection), sorted(collection)[:3]
