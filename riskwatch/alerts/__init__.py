"""Working the alerts: lifecycle, escalation, playbook steps, plans, reviews.

`lifecycle` is the pure fold, `actions` the action record, `store` the
append-only log (SQLite, embedded), `kafkalog` the same log on Kafka topics
(the Kafka deployment), `desk` puts them together for the shells (API, run,
worker).
"""

from riskwatch.alerts.desk import ActionRefused, AlertDesk, InvalidField, open_desk
from riskwatch.alerts.store import StoreBusy, StoreError, StoreFull, StoreUnusable, WorkflowStore

__all__ = ["ActionRefused", "AlertDesk", "InvalidField", "StoreBusy", "StoreError", "StoreFull", "StoreUnusable",
           "WorkflowStore", "open_desk"]
