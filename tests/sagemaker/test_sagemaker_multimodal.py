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
import zipfile

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


def _put_multimodal_model(column_types: dict[str, str] | None = None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=b"not really a model")
    column_types = column_types or {"review": "text"}
    summary = {
        "predictor_type": "multimodal",
        "label": "sentiment",
        "problem_type": "binary",
        "autogluon_version": "1.5.0",
        "features": list(column_types),
        "column_types": column_types,
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


def _pngs(folder, names: list[str]) -> list[str]:
    from PIL import Image

    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 20 % 256, 0, 0)).save(path)
        paths.append(str(path))
    return paths


IMAGE_FIT_ARGS = {"column_types": {"photo": "image_path"}, "hyperparameters": {"model.names": ["timm_image"]}}


def test_images_are_staged_as_channels_once_and_the_column_made_relative(hook, record, tmp_path):
    train = pd.DataFrame(
        {"photo": _pngs(tmp_path / "photos", ["cats/1.png", "dogs/2.png", "dogs/3.png"] * 2), "label": ["c", "d"] * 3}
    )
    tuning = pd.DataFrame({"photo": _pngs(tmp_path / "held", ["x/4.png", "y/5.png"]), "label": ["c", "d"]})
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    for name in ("ag-af-mm-img-1", "ag-af-mm-img-2"):
        hook.start_training(
            job_name=name,
            train_data=train,
            tuning_data=tuning,
            predictor_type="multimodal",
            predictor_init_args={"label": "label"},
            predictor_fit_args=IMAGE_FIT_ARGS,
            framework_version="1.5",
        )
    first, second = (
        {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
        for request in recorder.calls["CreateTrainingJob"]
    )
    assert set(first) == {"ag_args", "code", "train_data", "tuning_data", "train_images", "tune_images"}
    # Unchanged images: the same archive, under the same content-addressed key, uploaded once.
    assert first["train_images"] == second["train_images"]
    assert first["train_images"].endswith("/train_images.zip")
    with zipfile.ZipFile(io.BytesIO(_read(first["train_images"]))) as zipped:
        assert sorted(zipped.namelist()) == ["cats/1.png", "dogs/2.png", "dogs/3.png"]
    with zipfile.ZipFile(io.BytesIO(_read(first["tune_images"]))) as zipped:
        assert sorted(zipped.namelist()) == ["x/4.png", "y/5.png"]
    staged = pd.read_csv(io.BytesIO(_read(first["train_data"])))
    assert staged["photo"].tolist() == ["cats/1.png", "dogs/2.png", "dogs/3.png"] * 2
    assert pd.read_csv(io.BytesIO(_read(first["tuning_data"])))["photo"].tolist() == ["x/4.png", "y/5.png"]


@pytest.fixture
def elsewhere():
    """A folder that shares only the file system's root with pytest's tmp_path (under /tmp)."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_bad_image_paths_are_refused_before_any_request(hook, record, tmp_path, elsewhere):
    good = _pngs(tmp_path / "photos", ["a.png", "b.png"])
    far = _pngs(elsewhere, ["far.png"])[0]
    text = tmp_path / "photos" / "c.png"
    text.write_text("not an image")
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    for paths, message in (
        ([good[0], str(tmp_path / "gone.png")], "no such image file"),
        ([good[0], str(text)], "not a readable image"),
        ([good[0], far], "one folder"),
    ):
        with pytest.raises(InvalidParameterError, match=message) as err:
            hook.start_training(
                job_name="ag-af-mm-img-bad",
                train_data=pd.DataFrame({"photo": paths, "label": ["c", "d"]}),
                predictor_type="multimodal",
                predictor_init_args={"label": "label"},
                predictor_fit_args=IMAGE_FIT_ARGS,
                framework_version="1.5",
            )
        assert err.value.parameter == "train_data"
    assert recorder.calls["CreateTrainingJob"] == []


def _assert_image_folder_request(request: dict, input_uri: str) -> None:
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == input_uri
    assert request["TransformInput"]["SplitType"] == "None"
    assert request["BatchStrategy"] == "SingleRecord"
    assert request["TransformInput"]["ContentType"] == "application/x-image"
    assert request["TransformOutput"]["Accept"] == "application/jsonl"
    assert request["TransformOutput"]["AssembleWith"] == "None"


def test_batch_over_an_s3_folder_of_images_is_one_raw_image_request_per_file(hook, record, tmp_path):
    _put_multimodal_model({"photo": "image_path"})
    s3 = boto3.client("s3", region_name=REGION)
    for path in _pngs(tmp_path, ["a/1.png", "b/2.png"]):
        s3.upload_file(path, BUCKET, "images/" + path[len(str(tmp_path)) + 1 :])
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob")
    hook.start_batch_predict(job_name="ag-af-mm-img-bt", model_uri=MODEL_URI, test_data=f"s3://{BUCKET}/images/")
    [request] = recorder.calls["CreateTransformJob"]
    _assert_image_folder_request(request, f"s3://{BUCKET}/images/")  # read where it is: nothing staged


def test_a_local_folder_of_images_is_staged_with_its_sub_folders(hook, record, tmp_path):
    _put_multimodal_model({"photo": "image_path"})
    _pngs(tmp_path / "photos", ["a/1.png", "b/2.png", "3.png"])
    (tmp_path / "photos" / ".DS_Store").write_bytes(b"hidden: not sent")
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob")
    hook.start_batch_predict(job_name="ag-af-mm-img-bt", model_uri=MODEL_URI, test_data=str(tmp_path / "photos"))
    [request] = recorder.calls["CreateTransformJob"]
    input_uri = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert input_uri.startswith(f"s3://{BUCKET}/agc/staging/")
    assert input_uri.endswith("/test_images/")
    _assert_image_folder_request(request, input_uri)
    bucket, prefix = input_uri[5:].split("/", 1)
    keys = [o["Key"][len(prefix) :] for o in s3_objects(bucket, prefix)]
    assert sorted(keys) == ["3.png", "a/1.png", "b/2.png"]


def s3_objects(bucket: str, prefix: str) -> list[dict]:
    return boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])


def test_bad_image_folders_are_refused_before_any_request(hook, record, tmp_path):
    _put_multimodal_model({"photo": "image_path"})
    _pngs(tmp_path / "mixed", ["1.png"])
    (tmp_path / "mixed" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob", "CreateModel")
    for folder, message in (
        (tmp_path / "mixed", "not an image"),
        (tmp_path / "empty", "holds no files"),
        (f"s3://{BUCKET}/no-such-images/", "holds no files"),
    ):
        with pytest.raises(InvalidParameterError, match=message) as err:
            hook.start_batch_predict(job_name="ag-af-mm-img-bad", model_uri=MODEL_URI, test_data=str(folder))
        assert err.value.parameter == "test_data"
    # A model that reads more than one image: a folder cannot feed it.
    _put_multimodal_model({"photo": "image_path", "review": "text"})
    with pytest.raises(InvalidParameterError, match="one raw image per file"):
        hook.start_batch_predict(job_name="ag-af-mm-img-bad", model_uri=MODEL_URI, test_data=str(tmp_path / "mixed"))
    assert recorder.calls["CreateTransformJob"] == []
    assert recorder.calls["CreateModel"] == []
    assert s3_objects(BUCKET, "agc/staging/") == []
