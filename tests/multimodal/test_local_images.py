"""Image classification with a multimodal predictor end to end on the local backend, with real
AutoGluon, offline: tiny PNGs made here, a timm backbone (mobilenetv3_small_050 at 64 px) whose
random weights sit in a temporary Hugging Face cache that is emptied after the fit. The images
travel as the ``train_images`` channel; the endpoint takes a frame of image paths (sent as a
parquet envelope with base85 bytes) and raw image bytes (``application/x-image``)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.multimodal import IMAGE_FIT_ARGS, MULTIMODAL, fill_hub_cache, write_pngs

pytestmark = MULTIMODAL


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A Hugging Face cache holding random weights for the backbone's hub id, as if downloaded."""
    home = fill_hub_cache(tmp_path_factory.mktemp("hf-home"))
    previous = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(home)  # the local jobs inherit it
    yield home
    if previous is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = previous


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return write_pngs(root / "train", 40, seed=1), write_pngs(root / "new", 6, seed=2)


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def image_job(hook, hub_cache, images) -> dict:
    train, _ = images
    submission = hook.start_training(
        job_name="ag-af-test-mm-images",
        train_data=train,
        predictor_type="multimodal",
        predictor_init_args={"label": "shade"},
        predictor_fit_args=IMAGE_FIT_ARGS,
        max_runtime=900,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=3)
    result = hook.training_result(submission.job_name)
    assert result["status"] == "Completed", hook.log_tail("training", submission.job_name, 40)
    shutil.rmtree(hub_cache / "hub")  # serving must not need the cache
    return result


@pytest.fixture(scope="module")
def predictor(hook, image_job, tmp_path_factory):
    return hook.to_local_predictor(image_job["model_artifact_uri"], tmp_path_factory.mktemp("mm-image-predictor"))


def test_the_images_travel_as_a_channel_and_the_model_is_standalone(hook, image_job, predictor, images, local_root):
    assert image_job["metrics"]["problem_type"] == "binary"
    log = (local_root / "training" / "ag-af-test-mm-images" / "job.log").read_text()
    assert "preparing channels ag_args, code, train_data, train_images" in log
    _, new = images
    assert set(predictor.predict(new[["photo"]]).astype(str)) <= {"dark", "light"}


def test_bad_images_are_refused_before_any_job(hook, images, tmp_path):
    import tempfile
    from pathlib import Path

    train, _ = images
    elsewhere = Path(tempfile.mkdtemp(dir="/var/tmp"))  # shares only the root with tmp_path (/tmp)
    far = write_pngs(elsewhere, 1, seed=3)["photo"].iloc[0]
    not_an_image = tmp_path / "fake.png"
    not_an_image.write_text("hello")
    cases = {
        "no such image file": train.assign(photo=[*train["photo"][:-1], str(tmp_path / "gone.png")]),
        "not a readable image": train.assign(photo=[*train["photo"][:-1], str(not_an_image)]),
        "one folder": train.assign(photo=[*train["photo"][:-1], far]),
    }
    for message, frame in cases.items():
        with pytest.raises(InvalidParameterError, match=message) as err:
            hook.start_training(
                job_name="ag-af-test-mm-bad-images",
                train_data=frame,
                predictor_type="multimodal",
                predictor_init_args={"label": "shade"},
                predictor_fit_args=IMAGE_FIT_ARGS,
            )
        assert err.value.parameter == "train_data"
    shutil.rmtree(elsewhere, ignore_errors=True)
    assert "ag-af-test-mm-bad-images" not in {j.name for j in hook.backend.list_training_jobs()}


@pytest.fixture(scope="module")
def endpoint(hook, image_job):
    name = "ag-af-test-mm-image-endpoint"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=image_job["model_artifact_uri"]))
    yield result
    hook.delete_endpoint(name)


def test_real_time_frame_of_image_paths_and_raw_image_bytes(hook, endpoint, predictor, images, tmp_path):
    _, new = images
    # The files are read and sent as bytes: the endpoint never sees these paths.
    got = hook.predict_real_time(endpoint["endpoint_name"], new[["photo"]])
    expected = predictor.predict_proba(new[["photo"]], as_pandas=True, as_multiclass=True)
    assert got.astype(str).tolist() == expected.idxmax(axis=1).astype(str).tolist()
    moved = tmp_path / "moved.png"
    shutil.copy(new["photo"].iloc[0], moved)
    raw = hook.invoke(endpoint["endpoint_name"], moved.read_bytes(), "application/x-image", "application/json")
    answer = json.loads(raw)
    rows = answer if isinstance(answer, list) else answer.get("predictions", answer)
    assert rows[0]["shade"] == str(expected.idxmax(axis=1).iloc[0])
    assert rows[0]["light_proba"] == pytest.approx(float(expected["light"].iloc[0]), abs=1e-5)


def test_batch_over_a_folder_of_images_answers_each_file(hook, image_job, predictor, images, tmp_path):
    from pathlib import Path

    import pandas as pd

    _, new = images
    folder = Path(new["photo"].iloc[0]).parents[1]  # the six images, in sub-folders a/ and b/
    not_only_images = tmp_path / "mixed"
    shutil.copytree(folder, not_only_images)
    (not_only_images / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(InvalidParameterError, match="not an image") as err:
        hook.start_batch_predict(
            job_name="ag-af-test-mm-bad-folder", model_uri=image_job["model_artifact_uri"], test_data=not_only_images
        )
    assert err.value.parameter == "test_data"
    assert "ag-af-test-mm-bad-folder" not in {j.name for j in hook.backend.list_transform_jobs()}

    name = "ag-af-test-mm-image-folder"
    submission = hook.start_batch_predict(job_name=name, model_uri=image_job["model_artifact_uri"], test_data=folder)
    try:
        hook.wait_for_job("transform", submission.job_name, check_interval=1, max_check_interval=3)
        result = hook.batch_result(name)
        assert result["status"] == "Completed", hook.log_tail("transform", name, 40)
        relative = sorted(Path(p).relative_to(folder).as_posix() for p in new["photo"])
        # As on SageMaker: one <file>.out per input file, its key below the input prefix kept.
        outputs = sorted(
            Path(p).relative_to(result["output_uri"]).as_posix() for p in Path(result["output_uri"]).rglob("*.out")
        )
        assert outputs == [f"{r}.out" for r in relative]
        got = hook.read_predict_results(name).set_index("input_file").loc[relative]
        paths = pd.DataFrame({"photo": [str(folder / r) for r in relative]})
        expected = predictor.predict_proba(paths, as_pandas=True, as_multiclass=True)
        assert got["shade"].astype(str).tolist() == expected.idxmax(axis=1).astype(str).tolist()
        assert got["light_proba"].tolist() == pytest.approx(expected["light"].astype(float).tolist(), abs=1e-5)
        saved = pd.read_csv(hook.download_predict_results(name, tmp_path / "answers.csv"))
        assert saved.columns.tolist() == ["input_file", "shade"]
        assert sorted(saved["input_file"]) == relative
    finally:
        hook.cleanup_batch_model(name)
