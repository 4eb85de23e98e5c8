"""The local backend with an s3:// cloud_output_path on an S3-compatible server (moto's, on loopback).

The connection's endpoint_url points the hook, the detached training runner and the endpoint at the
server; credentials reach the runner only through its environment, never its state.
"""

from __future__ import annotations

import json

import boto3
import pytest

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import FAST_FIT_ARGS, LABEL

pytestmark = [pytest.mark.slow, pytest.mark.compat]


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_local_training_and_serving_with_artifacts_on_s3(s3_server, churn_frames, tmp_path, monkeypatch):
    secret = "moto-secret-DO-NOT-LEAK-1234"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_S3COMPAT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAMOTOKEY000000001",
                "password": secret,
                "extra": {"region_name": "us-east-1", "endpoint_url": s3_server},
            }
        ),
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="AKIAMOTOKEY000000001",
        aws_secret_access_key=secret,
    )
    s3.create_bucket(Bucket="agc-local-artifacts")
    train, test = churn_frames
    root = tmp_path / "root"
    hook = AutoGluonCloudHook(
        aws_conn_id="aws_s3compat", local_root=str(root), cloud_output_path="s3://agc-local-artifacts/runs"
    )
    sub = hook.start_training(
        job_name="ag-af-s3-output",
        train_data=train,
        predictor_init_args={"label": LABEL},
        predictor_fit_args=FAST_FIT_ARGS,
    )
    hook.wait_for_job("training", sub.job_name, check_interval=1, max_check_interval=2)
    result = hook.training_result(sub.job_name)
    assert result["model_artifact_uri"] == "s3://agc-local-artifacts/runs/model/ag-af-s3-output/output/model.tar.gz"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="agc-local-artifacts")["Contents"]}
    assert "runs/model/ag-af-s3-output/output/model.tar.gz" in keys
    assert "runs/model/ag-af-s3-output/output/output.tar.gz" in keys
    assert any(k.startswith("runs/staging/") and k.endswith("/train_data.csv") for k in keys)
    assert result["metrics"]["best_model"]

    # the model deploys from S3 and answers
    plan = hook.start_deploy(endpoint_name="ag-af-s3-ep", model_uri=result["model_artifact_uri"])
    hook.finish_deploy(plan)
    assert len(hook.predict_real_time("ag-af-s3-ep", test.head(5))) == 5
    hook.delete_endpoint("ag-af-s3-ep")

    # the secret reached the runner's environment only: not its state, its files or its log
    for path in root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
