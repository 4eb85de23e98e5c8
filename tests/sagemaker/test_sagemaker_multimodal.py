"""SageMaker backend, multimodal (text): exact requests under moto with strict validation.

Training sends the kind, the label and AutoGluon's own ``column_types`` and ``hyperparameters`` in
``ag_args.json`` and ships ``kind_multimodal.py`` in the code channel; text checks refuse bad data
before any request; a batch transform of rows is cut at lines (CSV in, JSON lines out). No
AutoGluon here: the requests are the host's alone.
"""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.sagemaker.conftest import BUCKET, REGION

MODEL_URI = f"s3://{BUCKET}/agc/model/ag-af-mm-1/output/model.tar.gz"
FIT_ARGS = {
    "column_types": {"review": "text"},
    "hyperparameters": {"model.names": ["hf_text"], "env.num_gpus": 0},
    "time_limit": 120,
}


@pytest.fixture
def reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review": ["lovely and superb", "awful, broken", "fine delivery", "useless item"] * 5,
            "sentiment": ["pos", "neg", "pos", "neg"] * 5,
        }
    )


def _read(uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


def test_training_request_carries_the_kind_and_autogluons_own_arguments(hook, record, reviews):
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-mm-fit",
        train_data=reviews,
        predictor_type="multimodal",
        predictor_init_args={"label": "sentiment"},
        predictor_fit_args=FIT_ARGS,
        framework_version="1.5",
    )
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"ag_args", "code", "train_data"}
    assert json.loads(request["HyperParameters"]["ag_predictor_type"]) == "multimodal"
    ag_args = json.loads(_read(channels["ag_args"]))
    assert ag_args["predictor_type"] == "multimodal"
    assert ag_args["predictor_init_args"] == {"label": "sentiment"}
    assert ag_args["predictor_fit_args"] == FIT_ARGS
    staged = pd.read_csv(io.BytesIO(_read(channels["train_data"])))
    assert staged.equals(reviews)
    with tarfile.open(fileobj=io.BytesIO(_read(channels["code"]))) as code:
        assert {"train.py", "serve.py", "ag_kinds.py", "kind_multimodal.py"} <= set(code.getnames())


@pytest.mark.parametrize(
    ("change", "parameter", "message"),
    [
        (lambda f: f.assign(review=range(len(f))), "train_data", "declared text"),
        (lambda f: f.drop(columns=["review"]), "train_data", "review"),
        (lambda f: f.assign(sentiment=None), "train_data", "no values"),
    ],
)
def test_bad_text_data_is_refused_before_any_request(hook, record, reviews, change, parameter, message):
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError, match=message) as err:
        hook.start_training(
            job_name="ag-af-mm-bad",
            train_data=change(reviews),
            predictor_type="multimodal",
            predictor_init_args={"label": "sentiment"},
            predictor_fit_args=FIT_ARGS,
            framework_version="1.5",
        )
    assert err.value.parameter == parameter
    assert recorder.calls["CreateTrainingJob"] == []
    assert "Contents" not in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix="agc/")


def test_a_missing_label_is_refused_before_any_request(hook, record, reviews):
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(
            job_name="ag-af-mm-nolabel", train_data=reviews, predictor_type="multimodal", predictor_fit_args=FIT_ARGS
        )
    assert err.value.parameter == "predictor_init_args"
    assert recorder.calls["CreateTrainingJob"] == []


def _put_multimodal_model() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=b"not really a model")
    summary = {
        "predictor_type": "multimodal",
        "label": "sentiment",
        "problem_type": "binary",
        "autogluon_version": "1.5.0",
        "features": ["review"],
        "column_types": {"review": "text"},
        "class_labels": ["neg", "pos"],
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


def test_batch_request_of_text_rows_is_cut_at_lines(hook, record, reviews):
    _put_multimodal_model()
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob", "CreateModel")
    hook.start_batch_predict(job_name="ag-af-mm-bt", model_uri=MODEL_URI, test_data=reviews[["review"]])
    [request] = recorder.calls["CreateTransformJob"]
    assert request["BatchStrategy"] == "MultiRecord"
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformInput"]["ContentType"] == "text/csv"
    assert request["TransformOutput"]["Accept"] == "application/jsonl"
    assert request["TransformOutput"]["AssembleWith"] == "Line"
    [model] = recorder.calls["CreateModel"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == MODEL_URI
    staged = pd.read_csv(io.BytesIO(_read(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])))
    assert staged["review"].tolist() == reviews["review"].tolist()
