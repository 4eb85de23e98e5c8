from __future__ import annotations

import pytest

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.jobconfig import build_ag_args, dumps_canonical
from airflow_autogluon_cloud.settings import resolve_backend
from airflow_autogluon_cloud.status import JobStatus


def test_deterministic_names_are_valid_stable_and_distinct():
    a = naming.deterministic_name("fit", "my_dag" * 20, "train.model", "scheduled__2026-11-01T00:00:00+00:00", -1)
    b = naming.deterministic_name("fit", "my_dag" * 20, "train.model", "scheduled__2026-11-01T00:00:00+00:00", -1)
    c = naming.deterministic_name("fit", "my_dag" * 20, "train.model", "scheduled__2026-11-02T00:00:00+00:00", -1)
    d = naming.deterministic_name("fit", "my_dag" * 20, "train.model", "scheduled__2026-11-01T00:00:00+00:00", 3)
    assert a == b
    assert len({a, c, d}) == 3
    for name in (a, c, d, naming.generation_name(a, 7)):
        assert naming.is_valid_name(name), name
        assert name.startswith(naming.NAME_PREFIX)
    assert naming.generation_name(a, 0) == a
    assert naming.generation_name(a, 2).endswith("-r2")


@pytest.mark.parametrize("name", ["", "-bad", "has_underscore", "x" * 64, "a b"])
def test_invalid_names_rejected(name):
    assert not naming.is_valid_name(name)


def test_derived_name_stays_within_limit():
    base = "ag-af-" + "x" * 57
    derived = naming.derived_name(base, "config-1234567890")
    assert len(derived) <= 63
    assert naming.is_valid_name(derived)
    assert naming.derived_name(base, "a") != naming.derived_name(base + "y", "a")


def test_job_status_sets():
    assert JobStatus.COMPLETED.is_successful
    assert JobStatus.COMPLETED.is_terminal
    assert JobStatus.STOPPED.is_terminal
    assert not JobStatus.STOPPED.is_successful
    assert not JobStatus.IN_PROGRESS.is_terminal
    with pytest.raises(ValueError, match="Unknown job status 'Weird'"):
        JobStatus.parse("Weird")


def test_non_json_fit_args_rejected_with_argument_path():
    with pytest.raises(InvalidParameterError, match=r"predictor_fit_args\['hyperparameters'\]\['GBM'\]"):
        build_ag_args("tabular", {"label": "y"}, {"hyperparameters": {"GBM": object()}})
    with pytest.raises(InvalidParameterError, match="predictor_init_args"):
        build_ag_args("tabular", {"label": "y", "eval_metric": lambda y, p: 0}, {})
    with pytest.raises(InvalidParameterError, match="predictor_fit_args.*JSON object"):
        build_ag_args("tabular", {"label": "y"}, "{not json")


def test_json_string_args_accepted_and_canonical():
    doc = build_ag_args("tabular", '{"label": "y"}', {"time_limit": 10, "presets": "medium_quality"})
    assert doc["predictor_init_args"] == {"label": "y"}
    assert dumps_canonical(doc) == dumps_canonical(dict(reversed(list(doc.items()))))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"predictor_type": "vision"}, "predictor_type"),
        ({"init": {}}, "label"),
        ({"fit": {"train_data": "x.csv"}}, r"predictor_fit_args\['train_data'\]"),
        ({"init": {"label": "y", "path": "/tmp/x"}}, "path"),
    ],
)
def test_bad_training_config(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        build_ag_args(kwargs.get("predictor_type", "tabular"), kwargs.get("init", {"label": "y"}), kwargs.get("fit"))


def test_backend_resolution(monkeypatch):
    assert resolve_backend(None) == "local"
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__BACKEND", "sagemaker")
    assert resolve_backend(None) == "sagemaker"
    assert resolve_backend("local") == "local"
    with pytest.raises(InvalidParameterError, match="backend"):
        resolve_backend("azure")


def test_container_scripts_agree_with_the_backends_on_file_and_channel_names():
    """The entry scripts are self-contained copies of these names; the services read what they write."""
    import importlib.util
    from pathlib import Path

    import airflow_autogluon_cloud
    from airflow_autogluon_cloud.backends import specs

    path = Path(airflow_autogluon_cloud.__file__).parent / "container" / "train.py"
    module_spec = importlib.util.spec_from_file_location("agc_train_script", path)
    train = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(train)
    assert train.PREDICTIONS_FILE == specs.FIT_PREDICTIONS_FILE
    assert train.SERVE_SCRIPT == specs.SERVE_SCRIPT
    text = path.read_text()
    for channel in (specs.CHANNEL_TRAIN, specs.CHANNEL_TUNING, specs.CHANNEL_CONFIG, specs.CHANNEL_PREDICT):
        assert f"SM_CHANNEL_{channel.upper()}" in text
