from __future__ import annotations

import json

import pytest

from airflow_autogluon_cloud.cli import main
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.naming import NAME_PREFIX
from airflow_autogluon_cloud.permissions import iam_policy, trust_relationship


def _statements(policy):
    return {s["Sid"]: s for s in policy["Statement"]}


def test_policy_is_scoped_and_deterministic():
    first = iam_policy("123456789012", "my-bucket", "AgRole")
    second = iam_policy("123456789012", "my-bucket", "AgRole")
    other = iam_policy("210987654321", "other-bucket", "AgRole")
    assert first == second
    assert first != other
    assert "123456789012" not in json.dumps(other)
    assert "my-bucket" not in json.dumps(other)
    stmts = _statements(first)
    for arn in stmts["SageMakerProviderResources"]["Resource"]:
        assert arn.endswith(f"/{NAME_PREFIX}*")
        assert ":123456789012:" in arn
    pass_role = stmts["PassExecutionRoleToSageMaker"]
    assert pass_role["Resource"] == "arn:aws:iam::123456789012:role/AgRole"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert stmts["S3Bucket"]["Resource"] == "arn:aws:s3:::my-bucket"
    assert stmts["S3Objects"]["Resource"] == "arn:aws:s3:::my-bucket/*"
    assert all("/aws/sagemaker/" in arn for arn in stmts["SageMakerLogs"]["Resource"])
    # nothing grants a wildcard action
    for statement in first["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a.endswith(":*") or a == "*" for a in actions)
    assert trust_relationship("123456789012")["Statement"][0]["Principal"]["Service"] == "sagemaker.amazonaws.com"


@pytest.mark.parametrize(
    ("account", "bucket", "match"),
    [
        ("12345", "b-1", "account_id"),
        ("123456789012", "s3://bucket", "cloud_output_bucket"),
        ("x" * 12, "b12", "account_id"),
    ],
)
def test_bad_permission_inputs(account, bucket, match):
    with pytest.raises(InvalidParameterError, match=match):
        iam_policy(account, bucket)


def test_hook_and_cli_write_the_same_files(tmp_path, capsys):
    paths = AutoGluonCloudHook.generate_default_permissions("123456789012", "my-bucket", str(tmp_path / "hook"))
    assert (
        main(
            [
                "permissions",
                "--account-id",
                "123456789012",
                "--bucket",
                "my-bucket",
                "--output-dir",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert "IAM policy" in capsys.readouterr().out
    for key, path in paths.items():
        cli_file = tmp_path / "cli" / path.rsplit("/", 1)[-1]
        assert json.loads(open(path).read()) == json.loads(cli_file.read_text()), key


def test_cli_list_on_empty_root_and_unknown_name(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "list"]) == 0
    assert "No jobs or endpoints" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "logs", "nope"]) == 2
    assert "does not exist" in capsys.readouterr().err
