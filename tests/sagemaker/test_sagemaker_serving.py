"""SageMaker backend, serving: exact requests under moto; update and rollback paths with Stubber."""

from __future__ import annotations

import datetime
import io
import json
import tarfile

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from airflow_autogluon_cloud.backends.sagemaker import SageMakerBackend
from airflow_autogluon_cloud.exceptions import EndpointError
from tests.sagemaker.conftest import BUCKET, REGION, ROLE_ARN

pytestmark = pytest.mark.compat

MODEL_URI = f"s3://{BUCKET}/agc/model/ag-af-fit-1/output/model.tar.gz"
INFERENCE_IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/autogluon-inference:1.5.0-cpu-py311"


def _put_model(summary: dict | None = None) -> None:
    """A model.tar.gz (and the output.tar.gz beside it) as a training job leaves them."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=b"not really a model")
    if summary is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = json.dumps(summary).encode()
            info = tarfile.TarInfo("training_summary.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        s3.put_object(
            Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3].replace("model.tar.gz", "output.tar.gz"), Body=buf.getvalue()
        )


def test_deploy_requests_are_exact(hook, record):
    _put_model({"autogluon_version": "1.5.0", "features": ["a", "b"]})
    recorder = record(hook.backend.client("sagemaker"), "CreateModel", "CreateEndpointConfig", "CreateEndpoint")
    plan = hook.start_deploy(
        endpoint_name="ag-af-ep-churn",
        model_uri=MODEL_URI,
        instance_type="ml.c5.xlarge",
        instance_count=2,
        volume_size=30,
        tags={"team": "churn"},
    )
    assert plan["action"] == "create"
    [model] = recorder.calls["CreateModel"]
    assert model == {
        "ModelName": plan["model_name"],
        "PrimaryContainer": {
            "Image": INFERENCE_IMAGE,
            "ModelDataUrl": MODEL_URI,
            "Environment": {
                "SAGEMAKER_PROGRAM": "serve.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                "PYTHONUNBUFFERED": "1",
            },
        },
        "ExecutionRoleArn": ROLE_ARN,
        "Tags": [{"Key": "airflow-autogluon-cloud", "Value": "model"}, {"Key": "team", "Value": "churn"}],
    }
    [config] = recorder.calls["CreateEndpointConfig"]
    assert config["EndpointConfigName"] == plan["config_name"]
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": plan["model_name"],
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 2,
            "VolumeSizeInGB": 30,
        }
    ]
    [endpoint] = recorder.calls["CreateEndpoint"]
    assert endpoint == {
        "EndpointName": "ag-af-ep-churn",
        "EndpointConfigName": plan["config_name"],
        "Tags": [{"Key": "airflow-autogluon-cloud", "Value": "endpoint"}, {"Key": "team", "Value": "churn"}],
    }
    result = hook.finish_deploy(plan)  # moto puts endpoints in service at once
    assert result["endpoint_name"] == "ag-af-ep-churn"
    # a retry of the same deploy creates nothing new
    again = hook.start_deploy(
        endpoint_name="ag-af-ep-churn",
        model_uri=MODEL_URI,
        instance_type="ml.c5.xlarge",
        instance_count=2,
        volume_size=30,
        tags={"team": "churn"},
    )
    assert again["action"] == "reattach"
    assert len(recorder.calls["CreateModel"]) == 1
    assert len(recorder.calls["CreateEndpoint"]) == 1


def test_transform_request_is_exact_and_model_removed_after(hook, record):
    _put_model({"autogluon_version": "1.5.0", "features": ["a", "b"]})
    recorder = record(hook.backend.client("sagemaker"), "CreateModel", "CreateTransformJob")
    frame = pd.DataFrame({"b": [1, 2], "a": [3, 4], "label": [0, 1]})
    sub = hook.start_batch_predict(
        job_name="ag-af-bt-exact", model_uri=MODEL_URI, test_data=frame, instance_type="ml.m5.xlarge", instance_count=3
    )
    [request] = recorder.calls["CreateTransformJob"]
    input_uri = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert request == {
        "TransformJobName": "ag-af-bt-exact",
        "ModelName": "ag-af-bt-exact-model",
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/agc/batch_transform/ag-af-bt-exact",
            "Accept": "application/jsonl",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3},
        # serve.py profiles each request there, for the data checks against the model's baseline
        "Environment": {"AG_DATA_PROFILE_URI": f"s3://{BUCKET}/agc/batch_transform/ag-af-bt-exact/data_profile"},
        "Tags": [{"Key": "airflow-autogluon-cloud", "Value": "transform"}],
    }
    # staged with exactly the model's features, in training order (mini-batches lose the header)
    staged = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=input_uri.split("/", 3)[3])
    assert staged["Body"].read().decode().splitlines() == ["a,b", "3,1", "4,2"]
    assert recorder.calls["CreateModel"][0]["ModelName"] == "ag-af-bt-exact-model"
    result = hook.batch_result(sub.job_name)
    assert result["status"] == "Completed"
    assert result["output_uri"] == f"s3://{BUCKET}/agc/batch_transform/ag-af-bt-exact/test_data.csv.out"
    hook.cleanup_batch_model(sub.job_name)
    from airflow_autogluon_cloud.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_model("ag-af-bt-exact-model")


def test_cleanup_is_idempotent(hook):
    _put_model()
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-ep-gone", model_uri=MODEL_URI))
    first = hook.delete_endpoint("ag-af-ep-gone")
    assert first["deleted"]
    assert hook.delete_endpoint("ag-af-ep-gone")["deleted"] is False
    hook.backend.delete_model("ag-af-never-existed")
    hook.backend.delete_endpoint_config("ag-af-never-existed")
    assert hook.backend.list_endpoints() == []


def test_sweep_by_tag_age_and_allow_list(hook):
    _put_model()
    for name in ("ag-af-ep-a", "ag-af-ep-b"):
        hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=MODEL_URI))
    sm = hook.backend.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="someone-elses",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": hook.backend.describe_endpoint_config(
                    hook.backend.describe_endpoint("ag-af-ep-a").config_name
                ).model_names[0],
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="someone-elses", EndpointConfigName="someone-elses")
    assert hook.sweep_endpoints(max_age_seconds=3600, dry_run=False) == []  # all fresh
    report = hook.sweep_endpoints(max_age_seconds=-1, dry_run=True)
    assert sorted(r["endpoint_name"] for r in report) == ["ag-af-ep-a", "ag-af-ep-b"]  # untagged one untouched
    assert not any(r["deleted"] for r in report)
    assert len(hook.backend.list_endpoints()) == 2
    report = hook.sweep_endpoints(keep=["ag-af-ep-a"], dry_run=False)
    assert [(r["endpoint_name"], r["deleted"]) for r in report] == [("ag-af-ep-b", True)]
    assert [e.name for e in hook.backend.list_endpoints()] == ["ag-af-ep-a"]
    assert sm.describe_endpoint(EndpointName="someone-elses")["EndpointStatus"] == "InService"


def _endpoint(status, config, reason=None):
    out = {
        "EndpointName": "ag-af-ep",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ag-af-ep",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": datetime.datetime.now(datetime.UTC),
        "LastModifiedTime": datetime.datetime.now(datetime.UTC),
    }
    if reason:
        out["FailureReason"] = reason
    return out


def _not_found(stub, operation):
    stub.add_client_error(operation, "ValidationException", "Could not find model/config.")


@pytest.fixture
def stubbed(hook):
    """The hook with its SageMaker client under a Stubber (moto has no UpdateEndpoint); S3 stays on moto."""
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    others = {}  # Application Auto Scaling (looked at around updates and deletes) stays on moto

    def clients(service):
        return (
            client if service == "sagemaker" else others.setdefault(service, boto3.client(service, region_name=REGION))
        )

    hook.__dict__["backend"] = SageMakerBackend(clients, region_name=REGION, sleep=lambda s: None)
    _put_model({"autogluon_version": "1.5.0"})
    with Stubber(client) as stub:
        yield hook, stub
        stub.assert_no_pending_responses()


def _queue_new_model_and_config(stub):
    _not_found(stub, "describe_model")
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}, None)
    _not_found(stub, "describe_endpoint_config")
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"},
        None,
    )


def test_update_moves_endpoint_and_removes_replaced_pieces(stubbed):
    hook, stub = stubbed
    _queue_new_model_and_config(stub)
    stub.add_response("describe_endpoint", _endpoint("InService", "ag-af-ep-c-old"), {"EndpointName": "ag-af-ep"})
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ag-af-ep"},
        {"EndpointName": "ag-af-ep", "EndpointConfigName": ANY},
    )
    plan = hook.start_deploy(endpoint_name="ag-af-ep", model_uri=MODEL_URI)
    assert plan["action"] == "update"
    assert plan["replaced_config"] == "ag-af-ep-c-old"
    new = plan["config_name"]
    stub.add_response("describe_endpoint", _endpoint("Updating", new), {"EndpointName": "ag-af-ep"})
    stub.add_response("describe_endpoint", _endpoint("InService", new), {"EndpointName": "ag-af-ep"})
    assert hook.wait_for_endpoint("ag-af-ep", check_interval=1, sleep=lambda s: None).status.value == "InService"
    stub.add_response("describe_endpoint", _endpoint("InService", new), {"EndpointName": "ag-af-ep"})
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "ag-af-ep-c-old",
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/old",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "ag-af-ep-m-old"}],
            "CreationTime": datetime.datetime.now(datetime.UTC),
        },
        {"EndpointConfigName": "ag-af-ep-c-old"},
    )
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "ag-af-ep-c-old"})
    stub.add_response("delete_model", {}, {"ModelName": "ag-af-ep-m-old"})
    result = hook.finish_deploy(plan)
    assert result["action"] == "update"
    assert result["config_name"] == new


def test_failed_update_rolls_back_new_pieces(stubbed):
    """SageMaker rejects the update: the config and model this deploy created are deleted again."""
    hook, stub = stubbed
    _queue_new_model_and_config(stub)
    stub.add_response("describe_endpoint", _endpoint("InService", "ag-af-ep-c-old"), {"EndpointName": "ag-af-ep"})
    stub.add_client_error("update_endpoint", "ResourceLimitExceeded", "account limit for ml.m5.2xlarge")
    stub.add_response("delete_endpoint_config", {}, None)
    stub.add_response("delete_model", {}, None)
    with pytest.raises(Exception, match="ResourceLimitExceeded"):
        hook.start_deploy(endpoint_name="ag-af-ep", model_uri=MODEL_URI)


def test_update_that_fails_in_service_rolls_back_and_keeps_old_config(stubbed):
    """The update ran but SageMaker rolled the endpoint back to the old config: roll back our pieces, raise."""
    hook, stub = stubbed
    _queue_new_model_and_config(stub)
    stub.add_response("describe_endpoint", _endpoint("InService", "ag-af-ep-c-old"), {"EndpointName": "ag-af-ep"})
    stub.add_response(
        "update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ag-af-ep"}, None
    )
    plan = hook.start_deploy(endpoint_name="ag-af-ep", model_uri=MODEL_URI)
    stub.add_response(
        "describe_endpoint",
        _endpoint("InService", "ag-af-ep-c-old", "health check failed"),
        {"EndpointName": "ag-af-ep"},
    )
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": plan["config_name"]})
    stub.add_response("delete_model", {}, {"ModelName": plan["model_name"]})
    with pytest.raises(EndpointError, match="health check failed"):
        hook.finish_deploy(plan)


def test_invoke_model_error_is_reported(aws):
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    backend = SageMakerBackend(lambda svc: client, region_name=REGION, sleep=lambda s: None)
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            "ModelError",
            "Received client error (400)",
            424,
            response_meta={},
            modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": "missing columns: plan"},
        )
        with pytest.raises(EndpointError, match="answered 400: missing columns: plan"):
            backend.invoke_endpoint("ag-af-ep", b"a,b\n1,2\n", "text/csv", "application/json")


def _deploy_operator(hook):
    from airflow_autogluon_cloud.operators.deploy import AGDeployOperator

    op = AGDeployOperator(
        task_id="deploy",
        model_uri={"model_artifact_uri": MODEL_URI, "framework_version": "1.5.0"},
        endpoint_name="ag-af-ep",
        backend="sagemaker",
        deferrable=True,
        check_interval=20,
    )
    op.__dict__["hook"] = hook
    return op


def _ti():
    from types import SimpleNamespace

    return SimpleNamespace(dag_id="d", task_id="deploy", run_id="r", map_index=-1, xcom_push=lambda **kw: None)


def _queue_create(stub):
    _queue_new_model_and_config(stub)
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint.")
    stub.add_response(
        "create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ag-af-ep"}, None
    )


def test_deferrable_deploy_defers_then_finishes(stubbed):
    from tests.conftest import task_deferred_class

    TaskDeferred = task_deferred_class()

    from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonEndpointTrigger

    hook, stub = stubbed
    op = _deploy_operator(hook)
    _queue_create(stub)
    stub.add_response("describe_endpoint", _endpoint("Creating", "pending"), {"EndpointName": "ag-af-ep"})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": _ti()})
    assert isinstance(deferred.value.trigger, AutoGluonEndpointTrigger)
    assert deferred.value.trigger.poll_interval == 20
    plan = deferred.value.kwargs["plan"]
    assert plan["action"] == "create"
    stub.add_response("describe_endpoint", _endpoint("InService", plan["config_name"]), {"EndpointName": "ag-af-ep"})
    result = op.execute_complete({"ti": _ti()}, {"status": "success", "job_name": "ag-af-ep"}, plan=plan)
    assert result["config_name"] == plan["config_name"]


def test_deferred_deploy_that_failed_is_rolled_back(stubbed):
    from tests.conftest import task_deferred_class

    TaskDeferred = task_deferred_class()

    hook, stub = stubbed
    op = _deploy_operator(hook)
    _queue_create(stub)
    stub.add_response("describe_endpoint", _endpoint("Creating", "pending"), {"EndpointName": "ag-af-ep"})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": _ti()})
    plan = deferred.value.kwargs["plan"]
    stub.add_response(
        "describe_endpoint",
        _endpoint("Failed", plan["config_name"], "model failed to load"),
        {"EndpointName": "ag-af-ep"},
    )
    stub.add_response("delete_endpoint", {}, {"EndpointName": "ag-af-ep"})
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": plan["config_name"]})
    stub.add_response("delete_model", {}, {"ModelName": plan["model_name"]})
    with pytest.raises(EndpointError, match="model failed to load"):
        op.execute_complete(
            {"ti": _ti()}, {"status": "failed", "job_name": "ag-af-ep", "message": "model failed to load"}, plan=plan
        )
