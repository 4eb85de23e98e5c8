"""Staging inputs: validation before anything is created, content-addressed keys, no re-upload."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.storage import parse_s3_uri


@pytest.fixture
def frame():
    return pd.DataFrame({"x": [1, 2, 3, 4], "c": ["a", "b", "a", "b"], "y": [0, 1, 0, 1]})


@pytest.fixture
def local_hook(tmp_path):
    return AutoGluonCloudHook(aws_conn_id=None, backend="local", cloud_output_path=str(tmp_path / "out"))


def test_stage_dataframe_twice_uploads_once(local_hook, frame):
    first = local_hook.stage_data(frame, "train_data", ["y"])
    second = local_hook.stage_data(frame, "train_data", ["y"])
    assert first.uri == second.uri
    assert first.uploaded_bytes > 0
    assert second.uploaded_bytes == 0
    assert "/staging/" in first.uri
    assert first.sha256 in first.uri
    other = local_hook.stage_data(frame.assign(x=[9, 9, 9, 9]), "train_data", ["y"])
    assert other.uri != first.uri
    assert other.uploaded_bytes > 0
    assert pd.read_csv(first.uri).equals(frame)


def test_stage_local_file_keeps_format(local_hook, frame, tmp_path):
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    staged = local_hook.stage_data(str(path), "train_data", ["y"])
    assert staged.uri.endswith("train_data.parquet")
    assert pd.read_parquet(staged.uri).equals(frame)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda f, p: f.drop(columns="y"), r"column\(s\) y not found; the data has: x, c"),
        (lambda f, p: f.iloc[0:0], "no rows"),
        (lambda f, p: str(p / "missing.csv"), "no such file"),
        (lambda f, p: (p / "empty.csv").write_text("x,c,y\n") and str(p / "empty.csv"), "no data rows"),
        (lambda f, p: (p / "data.xlsx").write_text("x") and str(p / "data.xlsx"), "unsupported file type"),
        (lambda f, p: "s3://Bad_Bucket/key.csv", "bucket name"),
        (lambda f, p: "s3:/bucket/key.csv", "s3://bucket/key"),
        (lambda f, p: "s3://bucket/dir/", "one data file"),
        (lambda f, p: 42, "DataFrame, a local file path or an s3://"),
    ],
)
def test_bad_inputs_fail_before_staging(local_hook, frame, tmp_path, make, match):
    with pytest.raises(InvalidParameterError, match=match) as err:
        local_hook.stage_data(make(frame, tmp_path), "train_data", ["y"])
    assert err.value.parameter == "train_data"
    assert not (tmp_path / "out" / "staging").exists()


@pytest.mark.parametrize("uri", ["s3://b/k", "s3://bucket//key", "https://bucket/key", "s3://bu..cket/k", "s3://"])
def test_malformed_s3_uris(uri):
    with pytest.raises(InvalidParameterError, match="cloud_output_path"):
        parse_s3_uri(uri, "cloud_output_path")


def test_valid_s3_uris():
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://my.bucket-1/a/b.csv") == ("my.bucket-1", "a/b.csv")


@pytest.fixture
def aws_env(monkeypatch):
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_TEST": '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}',
    }.items():
        monkeypatch.setenv(var, value)


def test_s3_staging_content_addressed_and_deduplicated(aws_env, frame):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="agc-bucket")
        hook = AutoGluonCloudHook(aws_conn_id="aws_test", backend="sagemaker", cloud_output_path="s3://agc-bucket/p")
        first = hook.stage_data(frame, "train_data", ["y"])
        second = hook.stage_data(frame, "train_data", ["y"])
        assert first.uri.startswith("s3://agc-bucket/p/staging/")
        assert first.uri == second.uri
        assert second.uploaded_bytes == 0
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="agc-bucket")["Contents"]]
        assert len(keys) == 1
        # an s3:// input is checked (exists, header has the label) and used in place
        s3.put_object(Bucket="agc-bucket", Key="raw/train.csv", Body=frame.to_csv(index=False).encode())
        in_place = hook.stage_data("s3://agc-bucket/raw/train.csv", "train_data", ["y"])
        assert in_place.uri == "s3://agc-bucket/raw/train.csv"
        assert in_place.uploaded_bytes == 0
        with pytest.raises(InvalidParameterError, match="no object exists"):
            hook.stage_data("s3://agc-bucket/raw/nothing.csv", "train_data", ["y"])
        with pytest.raises(InvalidParameterError, match=r"column\(s\) label not found"):
            hook.stage_data("s3://agc-bucket/raw/train.csv", "train_data", ["label"])
