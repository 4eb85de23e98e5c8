"""SageMaker backend, time series: exact requests under moto with strict validation.

Training stages the static features as their own channel; a batch forecast is partitioned by item
into JSON envelopes under one prefix, each file one request (``SplitType=None``). No AutoGluon here:
the requests are the host's alone.
"""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest

from airflow_autogluon_cloud.example_data import make_weekly_demand
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.sagemaker.conftest import BUCKET, REGION

pytestmark = pytest.mark.compat

MODEL_URI = f"s3://{BUCKET}/agc/model/ag-af-ts-1/output/model.tar.gz"
HORIZON = 4
LAYOUT = {
    "id_column": "store_item",
    "timestamp_column": "week",
    "target": "demand",
    "prediction_length": HORIZON,
    "freq": "W-SUN",
    "known_covariates_names": ["promo"],
    "quantile_levels": [0.1, 0.5, 0.9],
}


@pytest.fixture
def demand():
    return make_weekly_demand(6, 40, seed=2, horizon=HORIZON)


def _read(uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


def test_training_request_carries_the_static_features_channel_and_the_series_layout(hook, record, demand):
    history, _, static = demand
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-ts-fit",
        train_data=history,
        static_features=static,
        predictor_type="timeseries",
        timeseries_columns={"id_column": "store_item", "timestamp_column": "week"},
        named_init_args={"target": "demand", "prediction_length": HORIZON, "known_covariates_names": ["promo"]},
        predictor_fit_args={"hyperparameters": {"ETS": {}}},
        framework_version="1.5",
    )
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"ag_args", "code", "train_data", "static_features"}
    assert channels["static_features"].endswith("/static_features.csv")
    assert json.loads(request["HyperParameters"]["ag_predictor_type"]) == "timeseries"
    ag_args = json.loads(_read(channels["ag_args"]))
    assert ag_args["predictor_type"] == "timeseries"
    assert ag_args["timeseries"] == {"id_column": "store_item", "timestamp_column": "week"}
    assert ag_args["predictor_init_args"] == {
        "target": "demand",
        "prediction_length": HORIZON,
        "known_covariates_names": ["promo"],
    }
    with tarfile.open(fileobj=io.BytesIO(_read(channels["code"]))) as code:
        assert {"train.py", "serve.py", "ag_kinds.py", "kind_timeseries.py"} <= set(code.getnames())


def test_irregular_history_is_refused_before_any_request(hook, record, demand):
    history, _, static = demand
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(
            job_name="ag-af-ts-gaps",
            train_data=history.drop(index=[10, 11]),
            predictor_type="timeseries",
            timeseries_columns={"id_column": "store_item", "timestamp_column": "week"},
            named_init_args={"target": "demand", "prediction_length": HORIZON, "freq": "W-SUN"},
        )
    assert err.value.parameter == "freq"
    assert recorder.calls["CreateTrainingJob"] == []


def _put_timeseries_model() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=b"not really a model")
    summary = {
        "predictor_type": "timeseries",
        "label": "demand",
        "problem_type": "forecast",
        "autogluon_version": "1.5.0",
        "timeseries": LAYOUT,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = json.dumps(summary).encode()
        info = tarfile.TarInfo("training_summary.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(
        Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3].replace("model.tar.gz", "output.tar.gz"), Body=buf.getvalue()
    )


def test_batch_forecast_request_sends_whole_series_one_file_per_request(hook, record, demand, monkeypatch):
    from airflow_autogluon_cloud.kinds import series_io

    history, future, static = demand
    _put_timeseries_model()
    monkeypatch.setattr(series_io, "PART_MAX_BYTES", 4_000)  # several parts of whole items
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob")
    hook.start_batch_predict(
        job_name="ag-af-ts-bt",
        model_uri=MODEL_URI,
        test_data=history,
        known_covariates=future,
        static_features=static,
        instance_count=2,
    )
    [request] = recorder.calls["CreateTransformJob"]
    input_uri = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert input_uri.startswith(f"s3://{BUCKET}/agc/staging/")
    assert input_uri.endswith("/test_data/")
    assert request["BatchStrategy"] == "SingleRecord"
    assert request["TransformInput"]["SplitType"] == "None"
    assert request["TransformInput"]["ContentType"] == "application/json"
    assert request["TransformOutput"]["Accept"] == "text/csv"
    assert request["TransformOutput"]["AssembleWith"] == "None"
    assert request["TransformResources"]["InstanceCount"] == 2
    bucket, prefix = input_uri[5:].split("/", 1)
    keys = [
        o["Key"]
        for o in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    ]
    assert len(keys) > 1
    seen: list[str] = []
    for key in keys:
        part = json.loads(_read(f"s3://{bucket}/{key}"))
        items = {row[0] for row in part["history"]["data"]}
        assert {row[0] for row in part["known_covariates"]["data"]} == items
        assert {row[0] for row in part["static_features"]["data"]} == items
        seen += sorted(items)
    assert sorted(seen) == sorted(history["store_item"].unique())  # every item exactly once: none split
