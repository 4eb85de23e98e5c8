"""Data checks on SageMaker (under moto): the baseline read from S3, and a transform's profile.

The transform's container is played by serve.py under the real ``sagemaker_inference`` toolkit,
with the environment of the recorded CreateTransformJob request: each request's profile lands in
S3 beside the output, and the host merges and checks it when the job is done.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

from tests.conftest import LABEL
from tests.sagemaker.conftest import BUCKET, REGION
from tests.sagemaker.test_toolkit_contract import ModelServerContext

pytestmark = [pytest.mark.slow]

PREFIX = "agc/model/ag-af-fit-dq/output"


def _upload_model(trained_job) -> str:
    """The shared local fit's model.tar.gz and output.tar.gz, where a SageMaker training job leaves them."""
    s3 = boto3.client("s3", region_name=REGION)
    model = Path(trained_job["model_artifact_uri"])
    for name in ("model.tar.gz", "output.tar.gz"):
        s3.upload_file(str(model.parent / name), BUCKET, f"{PREFIX}/{name}")
    return f"s3://{BUCKET}/{PREFIX}/model.tar.gz"


def test_baseline_is_read_from_s3(hook, trained_job):
    baseline = hook.models.baseline(_upload_model(trained_job))
    names = [f["name"] for f in baseline["statistics"]["features"]]
    assert "monthly_charges" in names
    assert baseline["constraints"]["features"][0]["name"] == names[0]


def test_transform_profiles_written_by_serve_under_the_toolkit_are_checked(hook, record, trained_job, tmp_path):
    from airflow_autogluon_cloud.example_data import make_churn

    model_uri = _upload_model(trained_job)
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob")
    data = make_churn(600, seed=41, with_label=False)
    data["plan"] = data["plan"].where(data.index % 3 != 0, "platinum")  # a category the model never saw
    sub = hook.start_batch_predict(
        job_name="ag-af-bt-dq", model_uri=model_uri, test_data=data, framework_version="1.5.0"
    )
    [request] = recorder.calls["CreateTransformJob"]
    environment = request["Environment"]
    profile_uri = f"s3://{BUCKET}/agc/batch_transform/ag-af-bt-dq/data_profile"
    assert environment == {"AG_DATA_PROFILE_URI": profile_uri}

    # The transform container: model.tar.gz under /opt/ml/model, the job's environment, the toolkit.
    model_dir = tmp_path / "model"
    with tarfile.open(trained_job["model_artifact_uri"]) as tar:
        tar.extractall(model_dir, filter="data")
    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
    from sagemaker_inference.transformer import Transformer

    saved_path, saved_env = list(sys.path), dict(os.environ)
    os.environ.update(SAGEMAKER_PROGRAM="serve.py", SAGEMAKER_SUBMIT_DIRECTORY=str(model_dir / "code"), **environment)
    sys.path.insert(0, str(model_dir / "code"))
    for module in ("serve", "data_profile"):
        sys.modules.pop(module, None)
    try:
        transformer = Transformer(default_inference_handler=DefaultInferenceHandler())
        for start in (0, 250, 500):  # MultiRecord mini-batches: one request each
            rows = data.iloc[start : start + 250]
            context = ModelServerContext(model_dir, {"Content-Type": "text/csv", "Accept": "application/jsonl"})
            [answer] = transformer.transform([{"body": rows.to_csv(index=False).encode()}], context)
            assert context.status is None, answer
            text = answer.decode() if isinstance(answer, bytes) else answer
            assert len(text.splitlines()) == len(rows)
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        for module in ("serve", "data_profile"):
            sys.modules.pop(module, None)

    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="agc/batch_transform/ag-af-bt-dq/data_profile/")
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert sum("/parts/" in k for k in keys) == 3
    assert any(k.endswith("baseline/statistics.json") for k in keys)

    # moto starts and ends a transform at once: zero billable seconds, on the requested instances
    assert hook.batch_result(sub.job_name)["usage"] == {
        "instance_type": "ml.m5.2xlarge",
        "instance_count": 1,
        "billable_seconds": 0.0,
    }
    report = hook.batch.data_report(sub.job_name)  # moto's transform job is Completed at once
    assert report["status"] == "checked"
    assert report["rows"] == len(data)
    assert "plan" in report["checks"]["categorical_values_check"]
    body = s3.get_object(Bucket=BUCKET, Key="agc/batch_transform/ag-af-bt-dq/constraint_violations.json")["Body"]
    violations = json.loads(body.read())["violations"]
    assert any(v["feature_name"] == "plan" and "platinum" in v["description"] for v in violations)
    drift = json.loads(s3.get_object(Bucket=BUCKET, Key="agc/batch_transform/ag-af-bt-dq/drift.json")["Body"].read())
    assert drift["item_count"] == len(data)
    assert f"prediction:{LABEL}" in drift["columns"]


def test_idle_sweep_asks_cloudwatch_exactly_and_keeps_the_endpoint_that_was_invoked(hook, record):
    import datetime

    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model()
    for name in ("ag-af-ep-busy", "ag-af-ep-idle"):
        hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=MODEL_URI))
    # What SageMaker publishes for an endpoint that answered 3 requests (in the provider's account).
    hook.backend.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "ag-af-ep-busy"},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                "Timestamp": datetime.datetime.now(datetime.UTC),
                "Value": 3,
            }
        ],
    )
    recorder = record(hook.backend.client("cloudwatch"), "GetMetricStatistics")
    report = hook.sweep_endpoints(idle_for=0.001, dry_run=False)  # moto's endpoints are a moment old
    assert [(r["endpoint_name"], r["deleted"]) for r in report] == [("ag-af-ep-idle", True)]
    assert report[0]["reason"] == "no invocations in 0s"
    assert [e.name for e in hook.backend.list_endpoints()] == ["ag-af-ep-busy"]
    calls = recorder.calls["GetMetricStatistics"]
    assert [c["Dimensions"][0]["Value"] for c in calls] == ["ag-af-ep-busy", "ag-af-ep-idle"]
    for call, name in zip(calls, ("ag-af-ep-busy", "ag-af-ep-idle"), strict=True):
        start, end = (datetime.datetime.fromisoformat(str(call.pop(key))) for key in ("StartTime", "EndTime"))
        assert end - start == datetime.timedelta(seconds=60)  # whole minutes, to the end of the current one
        assert (end.second, end.microsecond) == (0, 0)
        assert call == {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocations",
            "Dimensions": [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
            "Period": 60,
            "Statistics": ["Sum"],
        }


def test_data_capture_is_the_exact_data_capture_config(hook, record):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model()
    recorder = record(hook.backend.client("sagemaker"), "CreateEndpointConfig")
    capture = {"sampling_percentage": 20, "destination": f"s3://{BUCKET}/capture"}
    deployed = hook.finish_deploy(
        hook.start_deploy(endpoint_name="ag-af-ep-capture", model_uri=MODEL_URI, data_capture=capture)
    )
    assert deployed["usage"] == {"instance_type": "ml.m5.2xlarge", "instance_count": 1}  # what it bills by the hour
    [request] = recorder.calls["CreateEndpointConfig"]
    assert request["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": f"s3://{BUCKET}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonl"],
        },
    }
    from airflow_autogluon_cloud.exceptions import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="s3://"):
        hook.start_deploy(
            endpoint_name="ag-af-ep-capture-2",
            model_uri=MODEL_URI,
            data_capture={"sampling_percentage": 20, "destination": "/tmp/x"},
        )
