"""SageMaker backend, training: exact requests under moto, waiting and failure paths with Stubber."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from airflow_autogluon_cloud.backends.base import TrainingJobSpec
from airflow_autogluon_cloud.backends.sagemaker import SageMakerBackend
from airflow_autogluon_cloud.exceptions import InvalidParameterError, JobFailedError, ResourceNotFoundError
from airflow_autogluon_cloud.status import JobStatus
from tests.sagemaker.conftest import BUCKET, REGION, ROLE_ARN

pytestmark = pytest.mark.compat


@pytest.fixture
def frame():
    return pd.DataFrame({"x": range(20), "c": ["a", "b"] * 10, "y": [0, 1] * 10})


def test_create_training_job_request_is_exact(hook, frame, record):
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    sub = hook.start_training(
        job_name="ag-af-fit-exact",
        train_data=frame,
        tuning_data=frame.head(10),
        predictor_init_args={"label": "y", "eval_metric": "roc_auc"},
        predictor_fit_args={"time_limit": 120, "presets": "good_quality"},
        instance_type="ml.m5.xlarge",
        framework_version="1.5",
        volume_size=50,
        max_runtime=7200,
        tags={"team": "churn"},
    )
    assert sub.job_name == "ag-af-fit-exact"
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"ag_args", "code", "train_data", "tuning_data"}
    for uri in channels.values():
        assert uri.startswith(f"s3://{BUCKET}/agc/staging/")
    assert channels["train_data"].endswith("/train_data.csv")
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/autogluon-training:1.5.0-cpu-py311",
        "TrainingInputMode": "File",
    }
    assert request["RoleArn"] == ROLE_ARN
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/agc/model"}
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert request["Tags"] == [
        {"Key": "airflow-autogluon-cloud", "Value": "training"},
        {"Key": "team", "Value": "churn"},
    ]
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert hps["ag_predictor_type"] == "tabular"
    assert hps["ag_framework_version"] == "1.5"
    # the staged configuration is exactly the JSON the entry script reads
    s3 = boto3.client("s3", region_name=REGION)
    bucket, key = channels["ag_args"][5:].split("/", 1)
    ag_args = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert ag_args["predictor_init_args"] == {"label": "y", "eval_metric": "roc_auc"}
    assert ag_args["predictor_fit_args"] == {"time_limit": 120, "presets": "good_quality"}
    # moto completes jobs at once; the hook reads the result back
    result = hook.training_result("ag-af-fit-exact")
    assert result["status"] == "Completed"
    assert result["model_artifact_uri"] == f"s3://{BUCKET}/agc/model/ag-af-fit-exact/output/model.tar.gz"


def test_second_submission_reuses_staged_objects_and_completed_job(hook, frame, record):
    args = {
        "job_name": "ag-af-fit-twice",
        "train_data": frame,
        "predictor_init_args": {"label": "y"},
        "framework_version": "1.5.0",
    }
    first = hook.start_training(**args)
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    s3_puts = record(hook.storage(f"s3://{BUCKET}/x").client, "PutObject", "CreateMultipartUpload")
    second = hook.start_training(**args)
    assert second.job_name == first.job_name
    assert second.reattached
    assert recorder.calls["CreateTrainingJob"] == []  # Completed: reused, not restarted
    assert s3_puts.calls["PutObject"] == []


def test_custom_image_and_explicit_role_argument(aws, frame, record):
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    other_role = "arn:aws:iam::123456789012:role/Other"
    hook = AutoGluonCloudHook(
        aws_conn_id="aws_agc",
        backend="sagemaker",
        cloud_output_path=f"s3://{BUCKET}/p",
        role_arn=other_role,
        external_id="arg-external-id",
    )
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-fit-custom",
        train_data=frame,
        predictor_init_args={"label": "y"},
        custom_image_uri="111122223333.dkr.ecr.us-east-1.amazonaws.com/my-ag:latest",
    )
    [request] = recorder.calls["CreateTrainingJob"]
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("/my-ag:latest")
    assert request["RoleArn"] == other_role


def test_role_assumption_uses_connection_role_and_external_id(aws, monkeypatch):
    """The Amazon provider's session factory assumes the role; arguments override the connection."""
    import botocore.client

    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    seen: list[dict] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        if operation == "AssumeRole":
            seen.append(dict(params))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    hook = AutoGluonCloudHook(aws_conn_id="aws_agc", backend="sagemaker", cloud_output_path=f"s3://{BUCKET}/p")
    creds = hook.aws.session.get_credentials().get_frozen_credentials()
    assert creds.access_key != "AKIDBASEKEY0000000"  # assumed-role credentials, not the base keys
    assert seen[-1]["RoleArn"] == ROLE_ARN
    assert seen[-1]["ExternalId"] == "conn-external-id"
    hook2 = AutoGluonCloudHook(
        aws_conn_id="aws_agc",
        backend="sagemaker",
        cloud_output_path=f"s3://{BUCKET}/p",
        role_arn="arn:aws:iam::123456789012:role/Override",
        external_id="override-id",
    )
    hook2.aws.session.get_credentials().get_frozen_credentials()
    assert seen[-1]["RoleArn"] == "arn:aws:iam::123456789012:role/Override"
    assert seen[-1]["ExternalId"] == "override-id"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"cloud_output_path": "/local/dir"}, "cloud_output_path"),
        ({"framework_version": "0.1"}, "framework_version"),
        ({"train_data": "s3://agc-test-bucket/missing.csv"}, "train_data"),
        ({"train_data": "s3:/bad"}, "train_data"),
    ],
)
def test_bad_sagemaker_input_creates_nothing(aws, frame, record, kwargs, parameter):
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    hook = AutoGluonCloudHook(
        aws_conn_id="aws_agc",
        backend="sagemaker",
        cloud_output_path=kwargs.pop("cloud_output_path", f"s3://{BUCKET}/p"),
    )
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(job_name="ag-af-bad", predictor_init_args={"label": "y"}, **{"train_data": frame, **kwargs})
    assert err.value.parameter == parameter
    assert recorder.calls["CreateTrainingJob"] == []


def _stubbed_backend(service="sagemaker"):
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    sleeps: list[float] = []
    backend = SageMakerBackend(lambda svc: client, region_name=REGION, sleep=sleeps.append)
    return backend, Stubber(client), sleeps


def _describe_response(status, reason=None):
    import datetime

    response = {
        "TrainingJobName": "ag-af-j",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/ag-af-j",
        "TrainingJobStatus": status,
        "SecondaryStatus": "Training",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime.datetime.now(datetime.UTC),
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/agc/model/ag-af-j/output/model.tar.gz"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/agc/model"},
        "HyperParameters": {"ag_predictor_type": '"tabular"'},
    }
    if reason:
        response["FailureReason"] = reason
    return response


def test_wait_polls_until_failed_and_raises_with_reason():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    backend, stub, _ = _stubbed_backend()
    for status in ("InProgress", "InProgress"):
        stub.add_response("describe_training_job", _describe_response(status), {"TrainingJobName": "ag-af-j"})
    stub.add_response(
        "describe_training_job",
        _describe_response("Failed", "AlgorithmError: label 'y' not found"),
        {"TrainingJobName": "ag-af-j"},
    )
    hook = AutoGluonCloudHook(aws_conn_id=None, backend="sagemaker", cloud_output_path="s3://b/agc")
    hook.__dict__["backend"] = backend
    sleeps: list[float] = []
    with stub, pytest.raises(JobFailedError) as err:
        hook.wait_for_job("training", "ag-af-j", check_interval=30, stream_log=False, sleep=sleeps.append)
    assert err.value.status == "Failed"
    assert "label 'y' not found" in str(err.value)
    assert sleeps[0] == 30
    assert sleeps[1] > 30  # backing off
    stub.assert_no_pending_responses()


def test_stopped_job_is_not_a_success():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    backend, stub, _ = _stubbed_backend()
    stub.add_response("describe_training_job", _describe_response("Stopped"), {"TrainingJobName": "ag-af-j"})
    hook = AutoGluonCloudHook(aws_conn_id=None, backend="sagemaker", cloud_output_path="s3://b/agc")
    hook.__dict__["backend"] = backend
    with stub, pytest.raises(JobFailedError, match="Stopped"):
        hook.wait_for_job("training", "ag-af-j", stream_log=False, sleep=lambda s: None)


def test_not_found_and_other_errors_are_raised_at_once():
    # Throttling retries are botocore's (tests/sagemaker/test_retries.py, over real HTTP): the
    # Stubber answers before botocore's retry handler, so it can only show nothing else retries.
    backend, stub, sleeps = _stubbed_backend()
    stub.add_response("describe_training_job", _describe_response("Completed"), {"TrainingJobName": "ag-af-j"})
    stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
    stub.add_client_error("describe_training_job", "AccessDeniedException", "no")
    with stub:
        assert backend.describe_training_job("ag-af-j").status == JobStatus.COMPLETED
        with pytest.raises(ResourceNotFoundError):
            backend.describe_training_job("ag-af-j")
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError, match="AccessDenied"):
            backend.describe_training_job("ag-af-j")
    stub.assert_no_pending_responses()
    assert sleeps == []


def test_missing_role_or_image_rejected_before_any_call():
    backend, stub, _ = _stubbed_backend()
    spec = TrainingJobSpec(
        "ag-af-j", {"train_data": "s3://b/k"}, "s3://b/o", {}, "ml.m5.xlarge", 10, 60, None, ROLE_ARN
    )
    with stub, pytest.raises(InvalidParameterError, match="framework_version"):
        backend.create_training_job(spec)
    spec.image_uri, spec.role_arn = "img", None
    with stub, pytest.raises(InvalidParameterError, match="role_arn"):
        backend.create_training_job(spec)


def test_cloudwatch_log_paging_with_cursor():
    backend, stub, _ = _stubbed_backend("logs")
    group = "/aws/sagemaker/TrainingJobs"
    streams = {"logStreams": [{"logStreamName": "ag-af-j/algo-1-1"}]}
    stub.add_response("describe_log_streams", streams, {"logGroupName": group, "logStreamNamePrefix": "ag-af-j/"})
    base = {"logGroupName": group, "logStreamName": "ag-af-j/algo-1-1", "startFromHead": True}
    stub.add_response(
        "get_log_events", {"events": [{"message": "a"}, {"message": "b"}], "nextForwardToken": "t1"}, base
    )
    stub.add_response("get_log_events", {"events": [], "nextForwardToken": "t1"}, {**base, "nextToken": "t1"})
    stub.add_response("describe_log_streams", streams, {"logGroupName": group, "logStreamNamePrefix": "ag-af-j/"})
    stub.add_response(
        "get_log_events", {"events": [{"message": "c"}], "nextForwardToken": "t2"}, {**base, "nextToken": "t1"}
    )
    stub.add_response("get_log_events", {"events": [], "nextForwardToken": "t2"}, {**base, "nextToken": "t2"})
    with stub:
        first = backend.read_training_log("ag-af-j")
        second = backend.read_training_log("ag-af-j", first.cursor)
    assert first.lines == ["a", "b"]
    assert second.lines == ["c"]
    json.dumps(second.cursor)


def test_deferrable_fit_defers_then_resumes(hook, frame, monkeypatch):
    """First check sees InProgress -> TaskDeferred with the trigger; success event -> the result dict."""
    from tests.conftest import task_deferred_class

    TaskDeferred = task_deferred_class()

    from airflow_autogluon_cloud.operators.fit import AGFitOperator
    from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

    real = SageMakerBackend.describe_training_job
    running = {"yes": True}

    def first_in_progress(self, name):
        desc = real(self, name)
        if running["yes"]:  # moto completes jobs at once; pretend it is still running until resumed
            desc.status = JobStatus.IN_PROGRESS
        return desc

    monkeypatch.setattr(SageMakerBackend, "describe_training_job", first_in_progress)
    op = AGFitOperator(
        task_id="fit",
        train_data=frame,
        predictor_init_args={"label": "y"},
        framework_version="1.5",
        backend="sagemaker",
        aws_conn_id="aws_agc",
        cloud_output_path=f"s3://{BUCKET}/agc",
        deferrable=True,
        check_interval=45,
        max_runtime=7200,
    )
    op.hook.__dict__["backend"] = hook.backend
    pushed = {}
    ti = SimpleNamespace(
        dag_id="d",
        task_id="fit",
        run_id="manual__1",
        map_index=-1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AutoGluonJobTrigger)
    assert trigger.kind == "training"
    assert trigger.poll_interval == 45
    assert trigger.hook_params["backend"] == "sagemaker"
    assert deferred.value.timeout.total_seconds() > 7200  # bounded by the job's own runtime
    assert "console.aws.amazon.com/sagemaker" in pushed["ag_training_job_url"]
    job = trigger.job_name
    running["yes"] = False
    result = op.execute_complete({"ti": ti}, {"status": "success", "job_name": job})
    assert result["status"] == "Completed"
    with pytest.raises(JobFailedError, match="OOM"):
        op.execute_complete({"ti": ti}, {"status": "failed", "job_name": job, "job_status": "Failed", "message": "OOM"})


def test_train_and_score_stages_a_predict_channel_and_reads_the_jobs_predictions(hook, frame, record):
    """The request carries a ``predict_data`` channel (CSV with a header); once the job has put its
    output.tar.gz where SageMaker puts it, the predictions are read like a transform job's."""
    import io
    import tarfile

    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-fit-and-score",
        train_data=frame,
        predictor_init_args={"label": "y"},
        framework_version="1.5",
        predict_data=frame.drop(columns="y").head(3),
    )
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"ag_args", "code", "train_data", "predict_data"}
    s3 = boto3.client("s3", region_name=REGION)
    bucket, key = channels["predict_data"][5:].split("/", 1)
    assert key.endswith(".csv")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines() == ["x,c", "0,a", "1,b", "2,a"]

    # what train.py leaves in SM_OUTPUT_DATA_DIR, as SageMaker uploads it
    lines = b'{"y":0,"0_proba":0.9,"1_proba":0.1}\n{"y":1,"0_proba":0.2,"1_proba":0.8}\n{"y":0,"0_proba":0.7,"1_proba":0.3}\n'
    summary = json.dumps({"predictor_type": "tabular", "predictions": {"file": "predictions.jsonl", "rows": 3}})
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("training_summary.json", summary.encode()), ("predictions.jsonl", lines)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    output_key = "agc/model/ag-af-fit-and-score/output/output.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=output_key, Body=archive.getvalue())

    result = hook.training_result("ag-af-fit-and-score")
    assert result["predictions"] == {"uri": f"s3://{BUCKET}/{output_key}", "member": "predictions.jsonl", "rows": 3}
    read = hook.read_predict_results("ag-af-fit-and-score")
    assert read["y"].tolist() == [0, 1, 0]
    assert list(read.columns) == ["y", "0_proba", "1_proba"]
