"""Throttling is retried by botocore's own retry handler, tuned by the AWS connection.

botocore's Stubber answers before the HTTP layer and so never reaches the retry handler; these
tests point real clients (built from an Airflow connection, as the provider builds them) at a tiny
HTTP server on 127.0.0.1 that answers like SageMaker, and count the requests it receives.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from airflow_autogluon_cloud.exceptions import ResourceNotFoundError
from airflow_autogluon_cloud.status import JobStatus
from tests.sagemaker.conftest import REGION

pytestmark = pytest.mark.compat

THROTTLED = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
NOT_FOUND = (400, {"__type": "ValidationException", "message": "Requested resource not found."})
COMPLETED = (
    200,
    {
        "TrainingJobName": "ag-af-j",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/ag-af-j",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": time.time(),
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/agc/model/ag-af-j/output/model.tar.gz"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/agc/model"},
        "HyperParameters": {"ag_predictor_type": '"tabular"'},
    },
)


class FakeSageMaker:
    """Answers POSTs with the scripted (status, body) pairs in order, repeating the last one."""

    def __init__(self, *answers: tuple[int, dict]) -> None:
        self.answers = list(answers)
        self.targets: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.targets.append(self.headers.get("X-Amz-Target", ""))
                status, body = fake.answers[min(len(fake.targets), len(fake.answers)) - 1]
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def connect(monkeypatch):
    """A hook on a SageMaker backend whose AWS connection points at a fake server."""
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDRETRYTEST00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "retry-secret")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    servers: list[FakeSageMaker] = []

    def make(*answers: tuple[int, dict], **extra):
        server = FakeSageMaker(*answers)
        servers.append(server)
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_RETRY",
            json.dumps({"conn_type": "aws", "extra": {"region_name": REGION, "endpoint_url": server.url, **extra}}),
        )
        hook = AutoGluonCloudHook(aws_conn_id="aws_retry", backend="sagemaker", cloud_output_path="s3://b/agc")
        return hook, server

    yield make
    for server in servers:
        server.close()


def test_throttling_is_survived_through_botocore_retries(connect):
    hook, server = connect(THROTTLED, THROTTLED, COMPLETED)
    assert hook.backend.describe_training_job("ag-af-j").status == JobStatus.COMPLETED
    assert server.targets == ["SageMaker.DescribeTrainingJob"] * 3
    assert hook.backend.client("sagemaker").meta.config.retries == {"mode": "standard", "total_max_attempts": 6}


def test_other_errors_are_not_retried(connect):
    hook, server = connect(NOT_FOUND)
    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_training_job("ag-af-j")
    assert len(server.targets) == 1


def test_the_connections_config_kwargs_win_over_the_default(connect):
    # max_attempts in botocore's Config counts retries: one retry, two requests, then the error.
    hook, server = connect(
        THROTTLED, THROTTLED, COMPLETED, config_kwargs={"retries": {"mode": "standard", "max_attempts": 1}}
    )
    with pytest.raises(ClientError, match="ThrottlingException"):
        hook.backend.describe_training_job("ag-af-j")
    assert len(server.targets) == 2


def test_the_environment_wins_over_the_default(connect, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # total attempts, as botocore reads it
    hook, server = connect(THROTTLED, THROTTLED, COMPLETED)
    with pytest.raises(ClientError, match="ThrottlingException"):
        hook.backend.describe_training_job("ag-af-j")
    assert len(server.targets) == 2
    assert hook.backend.client("sagemaker").meta.config.retries["mode"] == "standard"


def test_a_connection_setting_only_the_mode_keeps_the_default_attempts(connect):
    hook, server = connect(THROTTLED, THROTTLED, COMPLETED, config_kwargs={"retries": {"mode": "adaptive"}})
    assert hook.backend.describe_training_job("ag-af-j").status == JobStatus.COMPLETED
    assert len(server.targets) == 3
    assert hook.backend.client("sagemaker").meta.config.retries == {"mode": "adaptive", "total_max_attempts": 6}
