"""Alert change records in the shape of docs/contracts-internal.md, for tests."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)


def iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


def change_record(
    alert_id: str = "al-0000000000000001",
    *,
    indicator: str = "payment_overdue",
    tier: str = "orange",
    status: str = "open",
    change: str = "raised",
    sequence: int = 1,
    at: datetime = T0,
    owner: str = "sales_leadership_group",
    respond_within: timedelta = timedelta(hours=8),
    customer_id: str = "C-1",
    customer_class: str | None = "A",
    region: str | None = "east",
    step_dues: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=72)),
) -> dict:
    """An alert change record in the shape of docs/contracts-internal.md."""
    return {
        "alert_id": alert_id,
        "indicator": indicator,
        "tier": tier,
        "status": status,
        "change": change,
        "subject": {"kind": "invoice", "id": "INV-1", "customer_id": customer_id},
        "customer_class": customer_class,
        "region": region,
        "probability": 0.55, "impact": 0.25, "controllability": 0.6,
        "observed": 41.5, "threshold": 30, "unit": "days",
        "summary": f"Invoice INV-1 of {customer_id}: open 41.5 days past due (threshold 30)",
        "raised_at": iso(T0),
        "updated_at": iso(at),
        "resolved_at": iso(at) if status == "resolved" else None,
        "owner": owner,
        "respond_by": iso(T0 + respond_within),
        "playbook": {"id": "credit_tightening", "title": "Credit tightening",
                     "steps": [{"step": n, "action": f"step {n}", "owner": "credit_controller",
                                "due_at": iso(T0 + due)} for n, due in enumerate(step_dues, start=1)]},
        "evidence": ["evt-1"],
        "sequence": sequence,
    }


def next_change(record: dict, **changes) -> dict:
    out = copy.deepcopy(record)
    out.update(changes)
    out["sequence"] = record["sequence"] + 1
    return out
