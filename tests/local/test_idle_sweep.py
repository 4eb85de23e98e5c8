"""The idle sweep on the local backend: the endpoint's own invocation counter decides."""

from __future__ import annotations

import time

import pytest

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

pytestmark = pytest.mark.slow
IDLE_FOR = 20.0


@pytest.fixture
def endpoints(trained_job):
    hook = AutoGluonCloudHook(aws_conn_id=None)
    names = ["ag-af-test-sweep-busy", "ag-af-test-sweep-idle"]
    try:
        for name in names:
            hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
        yield hook, names
    finally:
        for name in names:
            hook.delete_endpoint(name)


def test_an_endpoint_with_invocations_survives_and_an_idle_one_is_deleted(endpoints, churn_frames):
    hook, (busy, idle) = endpoints
    deadline = time.monotonic() + 300
    while time.time() - hook.describe_endpoint(idle).created_at <= IDLE_FOR:  # both up longer than the period
        assert time.monotonic() < deadline
        time.sleep(0.5)
    _, test = churn_frames
    hook.predict_real_time(busy, test.head(3))
    assert hook.backend.endpoint_invocations(busy, time.time() - IDLE_FOR) == 1
    assert hook.sweep_endpoints(idle_for=IDLE_FOR, dry_run=True)[0]["deleted"] is False  # a dry run keeps it
    report = hook.sweep_endpoints(idle_for=IDLE_FOR, dry_run=False)
    mine = [r for r in report if r["endpoint_name"] in (busy, idle)]
    assert [(r["endpoint_name"], r["deleted"]) for r in mine] == [(idle, True)]
    assert hook.describe_endpoint(busy).status.value == "InService"
    names = {e.name for e in hook.backend.list_endpoints()}
    assert idle not in names
