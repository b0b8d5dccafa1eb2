"""A job's progress and the pacing's state as CloudWatch metrics, at the end of each batch.

Written as CloudWatch Embedded Metric Format log lines (one JSON object a line on stdout, which
Lambda sends to CloudWatch Logs, where the metrics are extracted): no call, no permission and no
time taken from the batch. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html
They go through the ``org_bootstrap.metrics`` logger, which writes the bare JSON to stdout and not
to the root logger: the functions' JSON log format would wrap them in a ``message`` field, where
CloudWatch no longer finds them (a local run points this logger at its own log file).

- ``JobAccountsPlanned``, ``JobAccountsDone``, ``JobAccountsChanged``, ``JobAccountsFailed``,
  ``JobAccountsRetrying`` with the ``Job`` dimension (``deploy`` or ``drift``): where the job is.
- ``ThrottledCalls`` (throttles since the last batch) and ``CallRate`` (the adaptive rate the
  pacing has come to, calls per second) with the ``Operation`` dimension, for each Account
  Management operation the process has called.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import CHANGED, FAILED

# Named when alternate contacts were the only setting; kept, since alarms and dashboards read it.
NAMESPACE = "OrgBootstrap/AlternateContacts"
JOB_DIMENSION, OPERATION_DIMENSION = "Job", "Operation"
JOB_METRICS = (
    "JobAccountsPlanned",
    "JobAccountsDone",
    "JobAccountsChanged",
    "JobAccountsFailed",
    "JobAccountsRetrying",
)
THROTTLED_CALLS, CALL_RATE = "ThrottledCalls", "CallRate"
_reported: dict[tuple[int, str], int] = {}  # throttles already reported, by limits and operation


class _Stdout(logging.Handler):
    """The bare message on whatever ``sys.stdout`` is when it is written."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), flush=True)


LOG = logging.getLogger("org_bootstrap.metrics")
LOG.propagate = False
LOG.setLevel(logging.INFO)
if not LOG.handlers:
    LOG.addHandler(_Stdout())


def batch_documents(job: Job, limits: RateLimits, *, kind: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The EMF documents of one batch of ``job`` (``kind``: deploy or drift)."""
    stamp = int(time.time() * 1000)
    counts = job.counts()
    values = (len(job.items), job.cursor, counts[CHANGED], counts[FAILED], len(job.retrying))
    documents = [
        {
            "_aws": {
                "Timestamp": stamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [[JOB_DIMENSION]],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in JOB_METRICS],
                    }
                ],
            },
            JOB_DIMENSION: kind,
            "JobId": job.id,
            **dict(zip(JOB_METRICS, values, strict=True)),
        }
    ]
    for operation, (throttles, rate) in sorted(limits.usage().items()):
        key = (id(limits), operation)
        new = throttles - _reported.get(key, 0)
        _reported[key] = throttles
        documents.append(
            {
                "_aws": {
                    "Timestamp": stamp,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": namespace,
                            "Dimensions": [[OPERATION_DIMENSION]],
                            "Metrics": [
                                {"Name": THROTTLED_CALLS, "Unit": "Count"},
                                {"Name": CALL_RATE, "Unit": "Count/Second"},
                            ],
                        }
                    ],
                },
                OPERATION_DIMENSION: operation,
                THROTTLED_CALLS: new,
                CALL_RATE: round(rate, 3),
            }
        )
    return documents


def emit_batch(job: Job, limits: RateLimits, *, kind: str, namespace: str = NAMESPACE) -> None:
    """Write the batch's EMF documents, one a line (Lambda's stdout goes to CloudWatch Logs)."""
    for document in batch_documents(job, limits, kind=kind, namespace=namespace):
        LOG.info(json.dumps(document, separators=(",", ":")))
