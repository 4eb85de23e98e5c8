"""Security: least-privilege IAM, loopback-only endpoints, owner-only state, no secret anywhere."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.naming import NAME_PREFIX
from airflow_autogluon_cloud.permissions import iam_policy, trust_relationship


def test_iam_policy_passes_parliament_and_grants_nothing_else():
    from parliament import analyze_policy_string

    policy = iam_policy("123456789012", "agc-bucket", "AgRole")
    findings = analyze_policy_string(json.dumps(policy)).findings
    serious = [(f.issue, f.severity, f.detail) for f in findings if str(f.severity).upper() not in ("LOW", "INFO")]
    assert serious == [], serious
    # parliament lints identity policies; the trust relationship (a resource policy) is checked by hand
    [trust] = trust_relationship("123456789012")["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"}
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for resource in resources:
            if resource == "*":
                # only calls that take no resource: listing and describing, the ECR login token, and
                # reading a metric's statistics (the idle sweep's invocations; CloudWatch has no
                # resource-level permission for it)
                assert all(
                    a.startswith(("sagemaker:List", "application-autoscaling:Describe"))
                    or a in ("ecr:GetAuthorizationToken", "cloudwatch:GetMetricStatistics")
                    for a in actions
                ), statement
            elif resource.startswith("arn:aws:sagemaker:"):
                # the registry's group names are the user's; everything else carries the provider's prefix
                assert resource.endswith(f"/{NAME_PREFIX}*") or resource.split(":")[-1] in (
                    "model-package-group/*",
                    "model-package/*",
                ), resource
            elif resource.startswith("arn:aws:application-autoscaling:"):
                assert resource == "arn:aws:application-autoscaling:*:123456789012:scalable-target/*"
            elif resource.startswith("arn:aws:cloudwatch:"):
                assert resource.endswith(f":alarm:TargetTracking-endpoint/{NAME_PREFIX}*")
            elif resource.startswith("arn:aws:s3:::"):
                assert resource in ("arn:aws:s3:::agc-bucket", "arn:aws:s3:::agc-bucket/*")
            elif resource.startswith("arn:aws:iam::"):
                assert resource == "arn:aws:iam::123456789012:role/AgRole" or (
                    actions == ["iam:CreateServiceLinkedRole"]
                    and resource.endswith("/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
                )
            elif resource.startswith("arn:aws:logs:"):
                assert ":log-group:/aws/sagemaker/" in resource
            else:
                assert resource.startswith("arn:aws:ecr:")
                assert ":repository/autogluon" in resource


def _listening_address(port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                return address
    raise AssertionError(f"nothing listens on port {port}")


@pytest.mark.slow
def test_endpoint_binds_loopback_and_state_is_owner_only(trained_job, tmp_path):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    result = hook.finish_deploy(
        hook.start_deploy(endpoint_name="ag-af-sec-ep", model_uri=trained_job["model_artifact_uri"])
    )
    try:
        port = int(result["url"].rsplit(":", 1)[1])
        assert result["url"].startswith("http://127.0.0.1:")
        assert _listening_address(port) == "0100007F"  # 127.0.0.1, not 0.0.0.0
        root = tmp_path / "root"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE((root / "state.db").stat().st_mode) == 0o600
        for ready in root.rglob("ready.json"):
            assert stat.S_IMODE(ready.stat().st_mode) == 0o600
    finally:
        hook.delete_endpoint("ag-af-sec-ep")


SECRET_KEY_ID = "AKIAAGCSECRETKEY0001"
SECRET_ACCESS_KEY = "agc-secret-access-key-Zx9Qw8"
SESSION_TOKEN = "agc-session-token-Lp3Mn7Vb5"


@pytest.mark.slow
def test_no_secret_reaches_logs_xcom_rendered_fields_or_state(airflow_db, churn_frames, monkeypatch):
    """Run a DAG whose AWS connection holds recognisable fake keys, then scan everything it wrote."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    try:
        conn = {
            "conn_type": "aws",
            "login": SECRET_KEY_ID,
            "password": SECRET_ACCESS_KEY,
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint_url, "aws_session_token": SESSION_TOKEN},
        }
        monkeypatch.setenv("AIRFLOW_CONN_AWS_SECRETS", json.dumps(conn))
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=SECRET_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        ).create_bucket(Bucket="agc-secrets")
        from tests.conftest import run_dag, task_states

        dag_run = run_dag("agc_test_secrets")
        assert dag_run.state == "success", task_states(dag_run)
    finally:
        server.stop()

    secrets = [SECRET_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN]
    home = Path(os.environ["AIRFLOW_HOME"])
    local_root = Path(os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"])
    # task logs and the local backend's files (state database, job logs, endpoint logs)
    for base in (home / "logs", local_root):
        for path in base.rglob("*"):
            if path.is_file() and path.suffix not in (".gz", ".pkl"):
                data = path.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, f"{secret[:8]}... found in {path}"
    # XCom and rendered template fields in the metadata database
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = [
            json.dumps(XComModel.deserialize_value(x), default=str)
            for x in session.query(XComModel).filter_by(dag_id="agc_test_secrets")
        ]
        rendered = [
            json.dumps(r.rendered_fields, default=str)
            for r in session.query(RenderedTaskInstanceFields).filter_by(dag_id="agc_test_secrets")
        ]
    assert xcoms
    assert rendered
    for blob in xcoms + rendered:
        for secret in secrets:
            assert secret not in blob
