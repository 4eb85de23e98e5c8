"""The predictor kinds, host side: one lookup, one typed summary, each kind's own rules."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.jobconfig import build_ag_args
from airflow_autogluon_cloud.kinds import DEFAULT_KIND, PREDICTOR_KINDS, ModelSummary, get_kind


def test_an_unknown_kind_is_refused_listing_the_valid_ones():
    with pytest.raises(InvalidParameterError, match="tabular, timeseries, multimodal") as err:
        get_kind("forecasting")
    assert err.value.parameter == "predictor_type"
    assert get_kind(None) is DEFAULT_KIND


def test_the_summary_states_its_defaults_once_and_round_trips_unknown_keys():
    empty = ModelSummary.from_dict({})
    assert empty.kind is DEFAULT_KIND
    assert not empty.known
    raw = {"predictor_type": "timeseries", "label": "demand", "future_key": [1, 2]}
    summary = ModelSummary.from_dict(raw)
    assert summary.kind is PREDICTOR_KINDS["timeseries"]
    assert summary.to_dict()["future_key"] == [1, 2]
    assert ModelSummary.from_dict(summary.to_dict()) == summary


@pytest.mark.parametrize("kind", ["tabular", "multimodal"])
def test_a_label_is_required_where_the_container_requires_it(kind):
    with pytest.raises(InvalidParameterError, match="label"):
        build_ag_args(kind, {}, {})


def test_the_time_series_target_defaults_to_target_and_columns_are_wired():
    doc = build_ag_args("timeseries", {}, {}, timeseries_columns={"id_column": "store"})
    kind = get_kind("timeseries")
    assert kind.label_of(doc["predictor_init_args"]) == "target"
    assert doc["timeseries"] == {"id_column": "store", "timestamp_column": "timestamp"}
    assert kind.required_columns("target", doc)[:3] == ["store", "timestamp", "target"]
    with pytest.raises(InvalidParameterError, match="time series"):
        build_ag_args("tabular", {"label": "y"}, {}, timeseries_columns={"id_column": "store"})


def test_named_time_series_arguments_merge_and_are_checked():
    doc = build_ag_args("timeseries", {"freq": "W"}, {}, named_init_args={"prediction_length": 4, "target": "demand"})
    assert doc["predictor_init_args"] == {"freq": "W", "prediction_length": 4, "target": "demand"}
    with pytest.raises(InvalidParameterError, match="one place"):
        build_ag_args("timeseries", {"freq": "W"}, {}, named_init_args={"freq": "D"})
    with pytest.raises(InvalidParameterError) as err:
        build_ag_args("timeseries", {}, {}, named_init_args={"prediction_length": 0})
    assert err.value.parameter == "prediction_length"
    with pytest.raises(InvalidParameterError) as err:
        build_ag_args("timeseries", {}, {}, named_init_args={"quantile_levels": [0.1, 1.5]})
    assert err.value.parameter == "quantile_levels"
    with pytest.raises(InvalidParameterError) as err:
        build_ag_args("timeseries", {}, {}, named_init_args={"eval_metric": "roc_auc"})
    assert err.value.parameter == "eval_metric"
    with pytest.raises(InvalidParameterError, match="not tabular") as err:
        build_ag_args("tabular", {"label": "y"}, {}, named_init_args={"prediction_length": 4})
    assert err.value.parameter == "prediction_length"


def _weekly(items: int = 3, points: int = 20) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-07", periods=points, freq="W")
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(items) for _ in stamps],
            "timestamp": list(stamps) * items,
            "target": [float(n) for n in range(items * points)],
        }
    )


def _check(frame: pd.DataFrame, **init_args) -> None:
    doc = build_ag_args("timeseries", {"prediction_length": 4, **init_args}, {})
    get_kind("timeseries").check_training_data(frame, "train_data", doc)


def test_series_checks_accept_regular_data():
    _check(_weekly())
    _check(_weekly(), freq="W")


@pytest.mark.parametrize(
    ("change", "parameter", "fix"),
    [
        (lambda f: pd.concat([f, f.iloc[[0]]]), "train_data", "duplicate"),
        (lambda f: f.drop(index=[5]), "freq", "not regular"),
        (lambda f: f.assign(target=f["target"].astype(str) + "x"), "target", "not numbers"),
        (
            lambda f: f[f["item_id"] != "i1"].pipe(lambda g: pd.concat([g, _weekly(1, 3).assign(item_id="s")])),
            "train_data",
            "more than prediction_length",
        ),
        (lambda f: f.groupby("item_id").head(6), "prediction_length", "longest series"),
        (lambda f: f.assign(timestamp="not a date"), "timestamp_column", "not timestamps"),
    ],
)
def test_series_checks_name_the_parameter_and_the_fix(change, parameter, fix):
    with pytest.raises(InvalidParameterError, match=fix) as err:
        _check(change(_weekly()))
    assert err.value.parameter == parameter


def test_static_features_must_cover_every_item_once():
    kind = get_kind("timeseries")
    doc = build_ag_args("timeseries", {}, {})
    static = pd.DataFrame({"item_id": ["i0", "i1"], "region": ["n", "s"]})
    kind.check_static_features(static, ["i0", "i1"], doc)
    with pytest.raises(InvalidParameterError, match="every item"):
        kind.check_static_features(static, ["i0", "i1", "i2"], doc)
    with pytest.raises(InvalidParameterError, match="one row per item"):
        kind.check_static_features(pd.concat([static, static]), ["i0", "i1"], doc)
    with pytest.raises(InvalidParameterError, match="no static features"):
        get_kind("tabular").check_static_features(static, [], doc)


def test_a_hub_model_is_refused_by_name_when_the_hub_is_off(monkeypatch):
    kind = get_kind("timeseries")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InvalidParameterError, match="Chronos2") as err:
        kind.check_fit_args({"hyperparameters": {"Naive": {}, "Chronos2": {}}})
    assert "HF_HUB_OFFLINE" in str(err.value)
    kind.check_fit_args({"hyperparameters": {"Naive": {}, "ETS": {}}})
    monkeypatch.delenv("HF_HUB_OFFLINE")
    kind.check_fit_args({"hyperparameters": {"Chronos2": {}}})
