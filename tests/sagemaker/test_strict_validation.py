"""The strict validator rejects what AWS rejects and botocore lets through, and nothing valid."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tests.sagemaker.conftest import REGION, ROLE_ARN
from tests.sagemaker.strict import StrictValidationError, check_request, violations

pytestmark = pytest.mark.compat


def _client(service="sagemaker"):
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


def _training_request(**changes):
    request = {
        "TrainingJobName": "ag-af-fit-strict",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": "s3://b/agc/model"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": [{"Key": "team", "Value": "churn"}],
    }
    request.update(changes)
    return request


def test_a_valid_request_passes():
    model = _client().meta.service_model
    assert violations(model.operation_model("CreateTrainingJob").input_shape, _training_request()) == []
    check_request(model, "CreateTrainingJob", _training_request())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"TrainingJobName": "ag-af-" + "x" * 60}, "TrainingJobName: length 66 is over the maximum 63"),
        ({"TrainingJobName": "ag_af_underscores"}, "TrainingJobName: 'ag_af_underscores' does not match the pattern"),
        (
            {"ResourceConfig": {"InstanceType": "ml.m5.huge", "InstanceCount": 1, "VolumeSizeInGB": 10}},
            "ResourceConfig.InstanceType: 'ml.m5.huge' is not one of",
        ),
        ({"Tags": [{"Key": "team", "Value": "a"}] * 51}, "Tags: 51 items, more than the maximum 50"),
        ({"Tags": [{"Key": "bad\x00key", "Value": "a"}]}, "Tags[0].Key: 'bad\\x00key' does not match"),
        (
            {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "KeepAlivePeriodInSeconds": 10**6}},
            "KeepAlivePeriodInSeconds: 1000000 is over the maximum 21600",
        ),
    ],
)
def test_botocore_accepts_what_aws_rejects_and_the_strict_check_catches_it(changes, message):
    client = _client()
    request = _training_request(**changes)
    # botocore's own validation (types, required, min) lets it through: the Stubber proves it.
    stub = Stubber(client)
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, request)
    stub.activate()
    with pytest.raises(StrictValidationError, match="CreateTrainingJob would be rejected") as err:
        client.create_training_job(**request)  # the suite-wide strict check stops it first
    assert message in str(err.value)
    stub.deactivate()
    with pytest.raises(StrictValidationError):
        check_request(client.meta.service_model, "CreateTrainingJob", request)


def test_the_recorder_checks_what_it_records(record):
    client = _client()
    recorder = record(client, "CreateTrainingJob")
    with pytest.raises(StrictValidationError, match="not one of"):
        recorder._record("CreateTrainingJob")(
            params=_training_request(
                ResourceConfig={"InstanceType": "ml.nope", "InstanceCount": 1, "VolumeSizeInGB": 1}
            )
        )
    assert recorder.calls["CreateTrainingJob"] == []


def test_patterns_must_match_the_whole_value_and_unicode_classes_work():
    s3 = _client("s3").meta.service_model
    autoscaling = _client("application-autoscaling").meta.service_model
    # \p{...} classes (ECMA/Smithy) in a tag key pattern: a letter from any script is a letter.
    assert violations(_client().meta.service_model.shape_for("TagKey"), "équipe") == []
    assert (
        violations(
            autoscaling.operation_model("RegisterScalableTarget").input_shape, {"ResourceId": "endpoint/e/variant/v"}
        )
        == []
    )
    assert violations(s3.operation_model("PutObject").input_shape, {"Bucket": "b", "Key": "k"}) == []
    with pytest.raises(StrictValidationError, match="ServiceNamespace"):
        check_request(
            autoscaling,
            "RegisterScalableTarget",
            {
                "ServiceNamespace": "sagemakr",
                "ResourceId": "r",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            },
        )


def test_services_outside_the_list_are_not_checked():
    logs = _client("logs").meta.service_model
    check_request(logs, "GetLogEvents", {"logGroupName": "g", "logStreamName": "s", "limit": 10**9})


def test_the_iam_check_fails_a_provider_call_the_generated_policy_does_not_allow(monkeypatch):
    """The policy check in every SageMaker test can fail: a call the policy lacks, made from the
    package, is a PolicyGapError; one it allows, or one made by the test itself, passes."""
    from tests.sagemaker import iam_check

    sagemaker, autoscaling = _client().meta.service_model, _client("application-autoscaling").meta.service_model
    iam_check.check_allowed(sagemaker, "DeleteDomain")  # made by this test, not by the provider
    monkeypatch.setattr(iam_check, "made_by_provider", lambda: True)
    iam_check.check_allowed(sagemaker, "CreateTrainingJob")
    iam_check.check_allowed(autoscaling, "PutScalingPolicy")
    iam_check.check_allowed(_client("s3").meta.service_model, "UploadPart")
    with pytest.raises(iam_check.PolicyGapError, match="sagemaker:DeleteDomain"):
        iam_check.check_allowed(sagemaker, "DeleteDomain")
    with pytest.raises(iam_check.PolicyGapError, match="s3:DeleteBucket"):
        iam_check.check_allowed(_client("s3").meta.service_model, "DeleteBucket")
