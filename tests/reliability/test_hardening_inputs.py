"""Hostile and clumsy input that never reaches an endpoint: data files, names, archives, arguments,
registry text and bounds (issue 30). Each test fails without the fix it guards."""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.datasets import prepare_input
from airflow_autogluon_cloud.exceptions import ArtifactError, InvalidParameterError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.jobconfig import build_ag_args
from tests.conftest import LABEL

# ---- input files ----------------------------------------------------------------------------


def test_a_csv_gz_with_a_huge_first_line_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "train.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:  # 150 MB of header, a few hundred KB on disk
        chunk = b"a" * (1024 * 1024)
        for _ in range(150):
            fh.write(chunk)
        fh.write(b"\n1\n")
    tracemalloc.start()
    try:
        with pytest.raises(InvalidParameterError) as caught:
            prepare_input(str(path), "train_data", required_columns=[LABEL])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "train_data" in message
    assert str(path) in message
    assert "first line" in message
    assert peak < 40 * 1024 * 1024, f"the check held {peak / 1e6:.0f} MB"


def test_a_csv_header_field_beyond_the_csv_module_limit_is_an_invalid_parameter(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(b'"' + b"x" * 200_000 + b'",churned\n1,0\n')
    with pytest.raises(InvalidParameterError, match="train_data.*header row is not readable CSV"):
        prepare_input(str(path), "train_data", required_columns=[LABEL])


def _parquet_bytes() -> bytes:
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"a": [1, 2], LABEL: [0, 1]}).to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "content", "fix"),
    [
        ("parquet-inside.jsonl", _parquet_bytes(), "not UTF-8 text"),
        ("array.jsonl", b"[1,2,3]\n", "JSON list, not an object"),
        ("broken.jsonl", b'{"a": 1,\n', "not JSON"),
        ("corrupt.parquet", b"PAR1" + b"\x00garbage" * 100 + b"PAR1", "not a readable Parquet file"),
        ("corrupt.csv.gz", b"\x1f\x8b\x08\x00" + b"not gzip at all" * 10, "not a readable .csv.gz file"),
    ],
)
def test_files_that_are_not_what_their_name_says_are_invalid_parameters(tmp_path, filename, content, fix):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(InvalidParameterError) as caught:
        prepare_input(str(path), "test_data", required_columns=[LABEL])
    message = str(caught.value)
    assert "test_data" in message, message
    assert filename in message, message
    assert fix in message, message


# ---- names ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=70))
def test_a_name_is_valid_only_when_every_character_is_allowed(text):
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    expected = 0 < len(text) <= naming.MAX_NAME_LENGTH and set(text) <= allowed and text[0] != "-" and text[-1] != "-"
    assert naming.is_valid_name(text) == expected
    assert not naming.is_valid_name(text + "\n")


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\n\n"])
def test_names_ending_in_a_newline_are_refused_everywhere(trained_job, tmp_path, suffix, request):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    uri = trained_job["model_artifact_uri"]
    name = "ag-af-nl" + suffix
    request.addfinalizer(lambda: [hook.delete_endpoint(e.name) for e in hook.backend.list_endpoints()])
    with pytest.raises(InvalidParameterError, match="job_name"):
        hook.start_training(job_name=name, train_data=str(tmp_path / "x.csv"), predictor_init_args={"label": LABEL})
    with pytest.raises(InvalidParameterError, match="endpoint_name"):
        hook.start_deploy(endpoint_name=name, model_uri=uri)
    with pytest.raises(InvalidParameterError, match="group"):
        hook.registry.register(group=name, model_uri=uri)
    with pytest.raises(InvalidParameterError, match="models"):
        hook.evaluation.check_models({"challenger" + suffix: uri})
    assert not (tmp_path / "root" / "endpoint").exists() or not any((tmp_path / "root" / "endpoint").iterdir())


# ---- training arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init_args", "fit_args", "parameter"),
    [
        ({"log_to_file": True, "log_file_path": "/elsewhere/x.log"}, {}, "predictor_init_args['log_file_path']"),
        ({}, {"save_path": "/elsewhere/model"}, "predictor_fit_args['save_path']"),
        ({"cache_dir": "/elsewhere"}, {}, "predictor_init_args['cache_dir']"),
    ],
)
def test_path_valued_autogluon_arguments_are_refused_like_path(init_args, fit_args, parameter):
    with pytest.raises(InvalidParameterError) as caught:
        build_ag_args("tabular", {"label": LABEL, **init_args}, fit_args)
    assert caught.value.parameter == parameter
    assert "cloud_output_path" in str(caught.value)
    # what stays inside the job's directory is still accepted
    build_ag_args("tabular", {"label": LABEL, "log_to_file": True}, {"time_limit": 10})


# ---- archives -------------------------------------------------------------------------------


def _archive(path: Path, members: dict[str, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, size in members.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_an_archive_bigger_than_the_limit_is_refused_while_streaming(tmp_path, monkeypatch):
    from airflow_autogluon_cloud.archives import safe_extract

    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__MAX_ARCHIVE_BYTES", str(10 * 1024 * 1024))
    archive = _archive(tmp_path / "model.tar.gz", {f"part{i}": 6 * 1024 * 1024 for i in range(3)})
    written: list[str] = []
    with pytest.raises(ArtifactError, match="max_archive_bytes") as caught:
        safe_extract(archive, tmp_path / "out", lambda name, _: written.append(name), source="s3://b/model.tar.gz")
    assert written == ["part0"], "members past the limit were written to disk"
    assert "s3://b/model.tar.gz" in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.tar.gz"]  # no staging directory left


def test_an_archive_with_too_many_members_is_refused(tmp_path, monkeypatch):
    from airflow_autogluon_cloud.archives import safe_extract

    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__MAX_ARCHIVE_MEMBERS", "50")
    archive = _archive(tmp_path / "model.tar.gz", {f"f{i}": 1 for i in range(80)})
    with pytest.raises(ArtifactError, match="more than 50 members.*max_archive_members"):
        safe_extract(archive, tmp_path / "out")
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__MAX_ARCHIVE_MEMBERS", "many")
    with pytest.raises(InvalidParameterError, match="max_archive_members"):
        safe_extract(archive, tmp_path / "out")


def test_the_default_archive_limits_fit_big_bagged_models():
    from airflow_autogluon_cloud.archives import DEFAULT_MAX_ARCHIVE_BYTES, DEFAULT_MAX_ARCHIVE_MEMBERS

    assert DEFAULT_MAX_ARCHIVE_BYTES >= 20 * 1024**3
    assert DEFAULT_MAX_ARCHIVE_MEMBERS >= 100_000


def test_a_refused_model_leaves_no_save_path_and_names_the_model_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__MAX_ARCHIVE_BYTES", str(1024 * 1024))
    model = _archive(tmp_path / "artifacts" / "model.tar.gz", {"training_summary.json": 10, "zeros": 64 * 1024**2})
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    save_path = tmp_path / "predictor"
    with pytest.raises(ArtifactError) as caught:
        hook.to_local_predictor(str(model), save_path=save_path)
    assert str(model) in str(caught.value)
    assert ".partial" not in str(caught.value)
    assert "/tmp" not in str(caught.value).replace(str(tmp_path), "")
    assert not save_path.exists()


# ---- registry text and bounds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("description", "x" * 1025, "SageMaker allows 1024"),
        ("description", "bell\x07", "U+0007"),
        ("description", "esc\x1b[31m", "U+001B"),
        ("description", "nul\x00", "U+0000"),
        ("description", "two\nlines", "U+000A"),
    ],
)
def test_registry_text_is_checked_against_sagemakers_limits(trained_job, tmp_path, field, value, fix):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    with pytest.raises(InvalidParameterError, match=re.escape(fix)) as caught:
        hook.registry.register(group="ag-af-text", model_uri=trained_job["model_artifact_uri"], **{field: value})
    assert caught.value.parameter == field
    assert hook.registry.versions("ag-af-text") == []


def test_registry_reasons_are_checked_and_text_within_the_limits_is_stored_whole(trained_job, tmp_path):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    description = "Churn model – trained on Q3 data; ünïcode and punctuation are fine. " * 14
    assert len(description) <= 1024
    version = hook.registry.register(
        group="ag-af-text", model_uri=trained_job["model_artifact_uri"], description=description
    )
    with pytest.raises(InvalidParameterError, match="reason"):
        hook.registry.set_approval("ag-af-text", version.version, "Approved", "ci", reason="r" * 257)
    with pytest.raises(InvalidParameterError, match="set_by"):
        hook.registry.set_approval("ag-af-text", version.version, "Approved", "ci\x1b", reason="ok")
    updated = hook.registry.set_approval("ag-af-text", version.version, "Approved", "ci", reason="r" * 256)
    assert updated.status_reason == "r" * 256


def test_local_instance_count_is_bounded_by_the_cores(trained_job, tmp_path, request):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    request.addfinalizer(lambda: hook.delete_endpoint("ag-af-many"))  # only if it was wrongly started
    too_many = (os.cpu_count() or 1) + 1
    with pytest.raises(InvalidParameterError, match=f"this machine has {too_many - 1} cores") as caught:
        hook.start_deploy(
            endpoint_name="ag-af-many", model_uri=trained_job["model_artifact_uri"], instance_count=too_many
        )
    assert caught.value.parameter == "instance_count"
    assert hook.backend.list_endpoints() == []
