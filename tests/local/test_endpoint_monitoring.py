"""Endpoints on the local backend: the idle sweep (the endpoint's own invocation counter decides)
and data capture (SageMaker's capture format, checked against the model's baseline)."""

from __future__ import annotations

import time

import pytest

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

pytestmark = pytest.mark.slow
IDLE_FOR = 20.0


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("capture")


@pytest.fixture(scope="module")
def endpoints(trained_job, capture_dir):
    hook = AutoGluonCloudHook(aws_conn_id=None)
    names = ["ag-af-test-sweep-busy", "ag-af-test-sweep-idle"]
    capture = {"sampling_percentage": 100, "destination": str(capture_dir)}
    try:
        for name in names:
            plan = hook.start_deploy(
                endpoint_name=name,
                model_uri=trained_job["model_artifact_uri"],
                data_capture=capture if name.endswith("busy") else None,
            )
            hook.finish_deploy(plan)
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


def test_captured_requests_are_in_sagemaker_format_and_checked_against_the_baseline(
    endpoints, trained_job, churn_frames, capture_dir
):
    import json

    from airflow_autogluon_cloud.example_data import make_churn

    hook, (busy, _) = endpoints
    for seed in (51, 52):
        hook.predict_real_time(busy, make_churn(150, seed=seed, with_label=False))
    lines = [
        json.loads(line) for path in sorted(capture_dir.rglob("*.jsonl")) for line in path.read_text().splitlines()
    ]
    assert len(lines) >= 2
    first = lines[-1]
    assert first["eventVersion"] == "0"
    assert set(first["eventMetadata"]) == {"eventId", "inferenceTime"}
    assert first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert first["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert first["captureData"]["endpointInput"]["encoding"] in ("CSV", "JSON")
    # <destination>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/<file>.jsonl, as SageMaker lays them out
    relative = next(capture_dir.rglob("*.jsonl")).relative_to(capture_dir).parts
    assert relative[:2] == (busy, "AllTraffic")
    assert len(relative) == 7
    model_uri = trained_job["model_artifact_uri"]
    clean = hook.monitoring.check_capture(busy, model_uri=model_uri, destination=str(capture_dir))
    assert clean["status"] == "checked"
    assert "categorical_values_check" not in clean["checks"], clean["checks"]
    shifted = make_churn(100, seed=53, with_label=False).assign(plan="platinum")
    hook.predict_real_time(busy, shifted)
    report = hook.monitoring.check_capture(busy, model_uri=model_uri, destination=str(capture_dir))
    assert report["rows"] == clean["rows"] + 100
    assert "plan" in report["checks"]["categorical_values_check"]
