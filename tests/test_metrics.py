"""A batch's metrics as Embedded Metric Format documents: the job's progress, and per operation
the calls throttled since the last batch and the rate the pacing has come to."""

from __future__ import annotations

import json

import pytest

from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.metrics import JOB_METRICS, NAMESPACE, batch_documents, emit_batch
from org_bootstrap.engine.pacing import Quota, RateLimits


def job() -> Job:
    found = Job("drift-1", {"k": {"SECURITY": {}}}, [("111111111111", "k"), ("222222222222", "k"), ("333", "k")])
    found.cursor = 2
    found.outcomes = [{"account": "111111111111", "status": "changed"}, {"account": "222222222222", "status": "failed"}]
    return found


def test_the_jobs_progress_is_a_metric_document_with_the_job_dimension() -> None:
    limits = RateLimits({"GetAlternateContact": Quota(10, 15)}, clock=lambda: 0.0, sleep=lambda _: None)

    (document,) = batch_documents(job(), limits, kind="drift")  # no call made yet: no operation metrics

    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["Job"]]
    assert [metric["Name"] for metric in directive["Metrics"]] == list(JOB_METRICS)
    assert document["Job"] == "drift"
    assert [document[name] for name in JOB_METRICS] == [3, 2, 1, 1, 0]


def test_throttled_calls_are_counted_once_and_the_adaptive_rate_is_reported() -> None:
    now = [0.0]
    limits = RateLimits({"GetAlternateContact": Quota(10, 15)}, clock=lambda: now[0], sleep=lambda _: None)
    for _ in range(3):
        limits.acquire("GetAlternateContact")
    limits.throttled("GetAlternateContact")
    limits.throttled("GetAlternateContact")  # within the hold: counted, the rate cut once

    _, first = batch_documents(job(), limits, kind="deploy", namespace="Test/Metrics")
    _, second = batch_documents(job(), limits, kind="deploy", namespace="Test/Metrics")

    assert first["Operation"] == "GetAlternateContact"
    assert first["ThrottledCalls"] == 2 and second["ThrottledCalls"] == 0
    assert first["CallRate"] == pytest.approx(7.0)
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Test/Metrics"


def test_documents_go_to_stdout_one_json_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit_batch(job(), RateLimits({}), kind="drift")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["JobAccountsDone"] == 2
