"""moto-backed AWS for the SageMaker backend's tests. botocore validates every request's types,
required members and minima, and :mod:`tests.sagemaker.strict` adds the maxima, patterns and enums
AWS checks; moto is not AWS, and these tests say nothing about AWS's behaviour."""

from __future__ import annotations

import json

import boto3
import botocore.client
import pytest
from moto import mock_aws

from tests.sagemaker.iam_check import check_allowed
from tests.sagemaker.strict import check_request

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/AutoGluonSageMakerRole"
BUCKET = "agc-test-bucket"


@pytest.fixture(autouse=True)
def strict_requests(monkeypatch):
    """Every request any client makes in these tests (moto, Stubber or real HTTP) is checked
    against the ``max``, ``pattern`` and ``enum`` constraints botocore does not check, and each
    request the provider makes against the IAM policy it generates."""
    original = botocore.client.BaseClient._make_api_call

    def checked(self, operation_name, api_params):
        check_request(self.meta.service_model, operation_name, api_params)
        check_allowed(self.meta.service_model, operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", checked)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDBASEKEY0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "base-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_AGC",
        json.dumps(
            {
                "conn_type": "aws",
                "extra": {
                    "region_name": REGION,
                    "role_arn": ROLE_ARN,
                    "assume_role_kwargs": {"ExternalId": "conn-external-id"},
                },
            }
        ),
    )
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def hook(aws):
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id="aws_agc", backend="sagemaker", cloud_output_path=f"s3://{BUCKET}/agc")


class RequestRecorder:
    """Records the parameters of every call to the given operations, each checked strictly
    (:func:`~tests.sagemaker.strict.check_request`) before botocore's own validation."""

    def __init__(self, client, *operations):
        self.calls: dict[str, list[dict]] = {op: [] for op in operations}
        self._model = client.meta.service_model
        for op in operations:
            client.meta.events.register(f"provide-client-params.{self._model.service_name}.{op}", self._record(op))

    def _record(self, op):
        def handler(params, **kwargs):
            check_request(self._model, op, params)
            self.calls[op].append(json.loads(json.dumps(params, default=str)))

        return handler


@pytest.fixture
def record():
    return RequestRecorder
