"""SageMaker backend, model lifecycle: the exact evaluation and Model Registry requests under moto.

moto accepts these requests after botocore validated them against the service model; it is not
AWS (it ignores ClientToken, overwrites fields UpdateModelPackage leaves out, and completes jobs
at once), so these tests pin what this provider sends, not how SageMaker answers.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import boto3
import pandas as pd
import pytest

from airflow_autogluon_cloud.backends.specs import CONTAINER_SUPPORT_MODULES
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.sagemaker.conftest import BUCKET, REGION, ROLE_ARN

pytestmark = pytest.mark.compat

TRAINING_IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/autogluon-training:1.5.0-cpu-py311"
INFERENCE_IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/autogluon-inference:1.5.0-cpu-py311"


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put_model(job: str, label: str = "y", problem_type: str = "binary") -> str:
    """A model.tar.gz on S3 with the training summary beside it, as a training job leaves them."""
    s3 = boto3.client("s3", region_name=REGION)
    summary = {
        "predictor_type": "tabular",
        "label": label,
        "problem_type": problem_type,
        "eval_metric": "roc_auc",
        "autogluon_version": "1.5.0",
    }
    prefix = f"agc/model/{job}/output"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/model.tar.gz", Body=_tarball({"predictor.pkl": b"x"}))
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{prefix}/output.tar.gz",
        Body=_tarball({"training_summary.json": json.dumps(summary).encode()}),
    )
    return f"s3://{BUCKET}/{prefix}/model.tar.gz"


def _read(uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def holdout():
    return pd.DataFrame({"x": range(20), "y": [0, 1] * 10})


def test_evaluation_is_a_training_job_running_evaluate_py_with_each_model_as_a_channel(hook, holdout, record):
    champion, challenger = put_model("ag-af-fit-old"), put_model("ag-af-fit-new")
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    submission = hook.evaluation.start(
        job_name="ag-af-eval-exact",
        data=holdout,
        models={"champion": champion, "challenger": challenger},
        metrics=["accuracy", "log_loss"],
        instance_type="ml.m5.large",
        max_runtime=1800,
    )
    assert submission.job_name == "ag-af-eval-exact"
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"code", "eval_args", "eval_data", "model_challenger", "model_champion"}
    assert channels["model_champion"] == champion
    assert channels["model_challenger"] == challenger
    assert all(c["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix" for c in request["InputDataConfig"])
    assert request["AlgorithmSpecification"] == {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"}
    assert request["RoleArn"] == ROLE_ARN
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/agc/evaluation"}
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}
    assert request["Tags"] == [{"Key": "airflow-autogluon-cloud", "Value": "evaluation"}]
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hps["sagemaker_program"] == "evaluate.py"
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert hps["ag_eval_data"] == channels["eval_data"]
    assert json.loads(hps["ag_models"]) == {"champion": champion, "challenger": challenger}
    # the staged arguments are what evaluate.py reads; the code archive holds evaluate.py and the
    # paired statistics modules it imports
    assert json.loads(_read(channels["eval_args"])) == {
        "version": 1,
        "label": "y",
        "problem_type": "binary",
        "eval_metric": "roc_auc",
        "metrics": ["accuracy", "log_loss"],
        "models": {"champion": "model_champion", "challenger": "model_challenger"},
        "baseline": "champion",
        "slices": [],
        "n_resamples": 1000,
        "seed": 0,
    }
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_read(channels["code"])))) as code:
        assert code.getnames() == ["evaluate.py", "paired_stats.py", "paired_tests.py", *CONTAINER_SUPPORT_MODULES]
    result = hook.evaluation.result("ag-af-eval-exact")  # moto completes the job at once, with no report
    assert result["status"] == "Completed"
    assert result["model_uris"] == {"champion": champion, "challenger": challenger}


def test_evaluation_refuses_models_of_different_tasks_before_any_request(hook, holdout, record):
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError, match="disagree on problem_type"):
        hook.evaluation.start(
            job_name="ag-af-eval-mixed",
            data=holdout,
            models=[put_model("ag-af-fit-a"), put_model("ag-af-fit-b", problem_type="regression")],
        )
    assert recorder.calls["CreateTrainingJob"] == []


def test_register_creates_group_and_package_once_and_approval_is_recorded(hook, record):
    client = hook.backend.client("sagemaker")
    ops = ("CreateModelPackageGroup", "CreateModelPackage", "UpdateModelPackage", "ListModelPackages")
    recorder = record(client, *ops)
    uri = put_model("ag-af-fit-reg")
    version = hook.registry.register(
        group="churn",
        model_uri=uri,
        metrics={"roc_auc": 0.91, "accuracy": 0.85},
        dataset="s3://agc-test-bucket/holdout.csv",
        registered_by="airflow:dag/run/register",
    )
    assert version.version == 1
    assert version.approval_status == "PendingManualApproval"
    assert version.training_job == "ag-af-fit-reg"
    assert version.metrics == {"roc_auc": 0.91, "accuracy": 0.85}
    [group] = recorder.calls["CreateModelPackageGroup"]
    assert group == {
        "ModelPackageGroupName": "churn",
        "ModelPackageGroupDescription": "AutoGluon models registered by airflow-autogluon-cloud",
        "Tags": [{"Key": "airflow-autogluon-cloud", "Value": "model-package-group"}],
    }
    [package] = recorder.calls["CreateModelPackage"]
    token = package.pop("ClientToken")
    assert token.startswith("agc-")
    assert len(token) == 36
    assert package == {
        "ModelPackageGroupName": "churn",
        "ModelPackageDescription": f"ag-af-fit-reg: {uri}",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": INFERENCE_IMAGE,
                    "ModelDataUrl": uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "serve.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                        "PYTHONUNBUFFERED": "1",
                    },
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json", "application/x-parquet"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {
            "ag:training_job": "ag-af-fit-reg",
            "ag:status_reason": "registered",
            "ag:framework_version": "1.5.0",
            "ag:dataset": "s3://agc-test-bucket/holdout.csv",
            "ag:status_set_by": "airflow:dag/run/register",
            "ag:registered_by": "airflow:dag/run/register",
            "ag:metric:accuracy": "0.85",
            "ag:metric:roc_auc": "0.91",
        },
    }
    # a retried task: the existing version is found (moto ignores ClientToken, so the lookup matters)
    again = hook.registry.register(group="churn", model_uri=uri, metrics={"roc_auc": 0.91})
    assert again.version == 1
    assert len(recorder.calls["CreateModelPackage"]) == 1
    assert hook.registry.latest_approved("churn") is None
    approved = hook.registry.set_approval("churn", 1, "Approved", "alice", "beat the champion")
    assert (approved.approval_status, approved.status_set_by, approved.status_reason) == (
        "Approved",
        "alice",
        "beat the champion",
    )
    [update] = recorder.calls["UpdateModelPackage"]
    assert update["ModelPackageArn"] == version.arn
    assert update["ModelApprovalStatus"] == "Approved"
    assert update["ApprovalDescription"] == "Approved by alice: beat the champion"
    assert update["CustomerMetadataProperties"]["ag:metric:roc_auc"] == "0.91"  # the whole map, every time
    assert update["CustomerMetadataProperties"]["ag:status_set_by"] == "alice"
    latest = hook.registry.latest_approved("churn")
    assert latest is not None
    assert latest.version == 1
    assert latest.metrics["roc_auc"] == 0.91
    assert latest.registered_by == "airflow:dag/run/register"  # kept when the status changes
    assert {
        "ModelPackageGroupName": "churn",
        "ModelPackageType": "Versioned",
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
        "MaxResults": 100,
        "ModelApprovalStatus": "Approved",
    } in recorder.calls["ListModelPackages"]


def test_latest_approved_resolves_and_rollback_rejects_it(hook):
    first, second = put_model("ag-af-fit-v1"), put_model("ag-af-fit-v2")
    hook.registry.register(group="churn-rb", model_uri=first)
    hook.registry.register(group="churn-rb", model_uri=second)
    assert [v.version for v in hook.registry.versions("churn-rb")] == [1, 2]
    hook.registry.set_approval("churn-rb", 1, "Approved", "gate")
    hook.registry.set_approval("churn-rb", 2, "Approved", "gate")
    assert hook.registry.resolve("registry://churn-rb/latest-approved")[0] == second
    assert hook.registry.resolve({"registry": "churn-rb", "version": 1})[0] == first
    back = hook.registry.rollback("churn-rb", set_by="oncall")
    assert back.version == 1
    assert hook.registry.get("churn-rb", 2).approval_status == "Rejected"
    assert hook.registry.resolve({"registry": "churn-rb"})[0] == first
    with pytest.raises(InvalidParameterError, match="only approved version"):
        hook.registry.rollback("churn-rb", set_by="oncall")


def test_register_records_the_training_jobs_usage_and_estimated_cost(hook, record, monkeypatch):
    """The version carries what its training job used, as ``ag:usage:*`` metadata, read back as numbers."""
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__INSTANCE_PRICES", '{"ml.m5.xlarge": 0.23}')
    client = hook.backend.client("sagemaker")
    client.create_training_job(
        TrainingJobName="ag-af-fit-cost",
        AlgorithmSpecification={"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE_ARN,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/agc/model"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )

    def billable(parsed, **_):  # AWS reports it once the job ends; moto does not
        parsed["BillableTimeInSeconds"] = 120

    client.meta.events.register("after-call.sagemaker.DescribeTrainingJob", billable)
    recorder = record(client, "CreateModelPackage")
    version = hook.registry.register(group="churn-cost", model_uri=put_model("ag-af-fit-cost"))
    [package] = recorder.calls["CreateModelPackage"]
    assert package["CustomerMetadataProperties"] == {
        "ag:training_job": "ag-af-fit-cost",
        "ag:status_reason": "registered",
        "ag:framework_version": "1.5.0",
        "ag:usage:billable_seconds": "240.0",
        "ag:usage:estimated_cost_usd": "0.015333",
        "ag:usage:instance_count": "2",
        "ag:usage:instance_type": "ml.m5.xlarge",
        "ag:usage:usd_per_hour": "0.23",
    }
    expected = {
        "billable_seconds": 240.0,
        "estimated_cost_usd": 0.015333,
        "instance_count": 2,
        "instance_type": "ml.m5.xlarge",
        "usd_per_hour": 0.23,
    }
    assert version.usage == expected
    assert hook.registry.get("churn-cost", version.version).to_dict()["usage"] == expected
