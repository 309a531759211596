"""What the worker counts: notifications by kind and outcome, periodic job runs.
Served by the API's GET /metrics (api/observability.py) for the worker inside `serve`,
and by `loyalty worker --metrics-port` for a worker running alone."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "loyalty_notifications_total",
    "Notifications the dispatcher finished with, by kind and outcome (sent, failed, retried, deferred, suppressed).",
    ["kind", "outcome"],
)
JOB_RUNS = Counter("loyalty_job_runs_total", "Periodic job runs, by job and outcome (ok or error).", ["job", "outcome"])
JOB_DURATION = Histogram(
    "loyalty_job_duration_seconds",
    "How long each periodic job run took.",
    ["job"],
    buckets=(0.01, 0.05, 0.25, 1, 5, 30, 120, 600),
)
