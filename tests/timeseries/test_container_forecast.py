"""train.py and serve.py for a time series, with real AutoGluon: one fit under the SageMaker
training contract (static features and a known covariate), then forecasts through the model's own
``code/serve.py`` compared with ``TimeSeriesPredictor.predict`` in this process."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from airflow_autogluon_cloud.example_data import make_weekly_demand
from tests.timeseries import HORIZON, QUANTILES, TIMESERIES, TS_FIT_ARGS

pytestmark = TIMESERIES
CONTAINER = Path(__file__).resolve().parents[2] / "airflow_autogluon_cloud" / "container"
LAYOUT = {"id_column": "store_item", "timestamp_column": "week"}
INIT_ARGS = {
    "target": "demand",
    "prediction_length": HORIZON,
    "freq": "W-SUN",
    "known_covariates_names": ["promo"],
    "quantile_levels": QUANTILES,
    "eval_metric": "WQL",
}


@pytest.fixture(scope="module")
def demand():
    return make_weekly_demand(20, 200, seed=3, horizon=HORIZON)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, demand) -> dict[str, Any]:
    history, _, static = demand
    root = tmp_path_factory.mktemp("ts-train")
    dirs = {name: root / name for name in ("train", "static", "args", "model", "output", "output_data")}
    for path in dirs.values():
        path.mkdir(parents=True)
    history.to_parquet(dirs["train"] / "train.parquet", index=False)
    static.to_csv(dirs["static"] / "static.csv", index=False)
    args = {
        "version": 1,
        "predictor_type": "timeseries",
        "predictor_init_args": INIT_ARGS,
        "predictor_fit_args": TS_FIT_ARGS,
        "leaderboard": True,
        "timeseries": LAYOUT,
    }
    (dirs["args"] / "ag_args.json").write_text(json.dumps(args))
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN_DATA": str(dirs["train"]),
        "SM_CHANNEL_STATIC_FEATURES": str(dirs["static"]),
        "SM_CHANNEL_AG_ARGS": str(dirs["args"]),
        "SM_MODEL_DIR": str(dirs["model"]),
        "SM_OUTPUT_DIR": str(dirs["output"]),
        "SM_OUTPUT_DATA_DIR": str(dirs["output_data"]),
    }
    proc = subprocess.run(
        [sys.executable, str(CONTAINER / "train.py")], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return {"dirs": dirs, "log": proc.stdout}


@pytest.fixture(scope="module")
def serve(fitted) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ts_serve_under_test", fitted["dirs"]["model"] / "code" / "serve.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(serve, fitted):
    return serve.model_fn(str(fitted["dirs"]["model"]))


def in_process(model, history, future, static) -> pd.DataFrame:
    from autogluon.timeseries import TimeSeriesDataFrame

    data = TimeSeriesDataFrame.from_data_frame(
        history, id_column="store_item", timestamp_column="week", static_features_df=static.copy()
    )
    known = TimeSeriesDataFrame.from_data_frame(future, id_column="store_item", timestamp_column="week")
    out = pd.DataFrame(model.predictor.predict(data, known_covariates=known)).reset_index()
    out.columns = [str(c) for c in out.columns]
    return out


def envelope(history, future=None, static=None) -> str:
    def split(frame):
        frame = frame.copy()
        frame["week"] = frame["week"].astype(str)
        return {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}

    body: dict[str, Any] = {"history": split(history)}
    if future is not None:
        body["known_covariates"] = split(future)
    if static is not None:
        body["static_features"] = {"columns": list(static.columns), "data": static.to_numpy().tolist()}
    return json.dumps(body)


def test_the_fit_records_the_series_layout_and_ships_the_kind_modules(fitted):
    dirs = fitted["dirs"]
    summary = json.loads((dirs["model"] / "training_summary.json").read_text())
    assert summary["predictor_type"] == "timeseries"
    assert summary["problem_type"] == "forecast"
    assert summary["label"] == "demand"
    layout = summary["timeseries"]
    assert layout["id_column"] == "store_item"
    assert layout["timestamp_column"] == "week"
    assert layout["prediction_length"] == HORIZON
    assert layout["known_covariates_names"] == ["promo"]
    assert layout["quantile_levels"] == QUANTILES
    assert set(summary["model_names"]) >= {"Naive", "ETS", "DirectTabular"}
    for module in ("serve.py", "ag_kinds.py", "kind_timeseries.py", "kind_tabular.py"):
        assert (dirs["model"] / "code" / module).is_file()
    board = pd.read_csv(dirs["output_data"] / "leaderboard.csv")
    assert {"Naive", "SeasonalNaive", "ETS", "DirectTabular", "RecursiveTabular"} <= set(board["model"])


def test_a_json_envelope_forecast_is_the_in_process_forecast(serve, model, demand):
    history, future, static = demand
    answer, kind = serve.transform_fn(
        model, envelope(history, future, static), "application/json", "application/x-parquet"
    )
    assert kind == "application/x-parquet"
    got = pd.read_parquet(io.BytesIO(answer))
    expected = in_process(model, history, future, static)
    assert list(got.columns) == ["item_id", "timestamp", "mean", "0.1", "0.5", "0.9"]
    assert len(got) == 20 * HORIZON
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_csv_answers_carry_mean_and_quantiles_for_every_item(serve, model, demand):
    history, future, static = demand
    answer, kind = serve.transform_fn(model, envelope(history, future, static), "application/json", "text/csv")
    got = pd.read_csv(io.StringIO(answer), float_precision="round_trip")
    expected = in_process(model, history, future, static)
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    for column in ("mean", "0.1", "0.5", "0.9"):  # CSV carries each value's shortest exact text
        assert (got[column].astype(expected[column].dtype).to_numpy() == expected[column].to_numpy()).all()
    assert (got["0.9"] >= got["0.1"]).all()


def test_history_without_the_known_covariates_is_a_400_naming_them(serve, model, demand):
    history, _, _ = demand
    with pytest.raises(serve.BadRequestError, match="promo") as err:
        serve.transform_fn(model, history.to_csv(index=False), "text/csv", "text/csv")
    assert err.value.status_code == 400


def test_a_hub_model_without_hub_access_fails_naming_it(tmp_path, demand):
    history, _, _ = demand
    dirs = {name: tmp_path / name for name in ("train", "args", "model", "output", "output_data")}
    for path in dirs.values():
        path.mkdir()
    history.to_csv(dirs["train"] / "train.csv", index=False)
    args = {
        "version": 1,
        "predictor_type": "timeseries",
        "predictor_init_args": {"target": "demand", "prediction_length": HORIZON},
        "predictor_fit_args": {"hyperparameters": {"Chronos2": {}}},
        "timeseries": LAYOUT,
    }
    (dirs["args"] / "ag_args.json").write_text(json.dumps(args))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SM_CHANNEL_TRAIN_DATA": str(dirs["train"]),
        "SM_CHANNEL_AG_ARGS": str(dirs["args"]),
        "SM_MODEL_DIR": str(dirs["model"]),
        "SM_OUTPUT_DIR": str(dirs["output"]),
        "SM_OUTPUT_DATA_DIR": str(dirs["output_data"]),
    }
    proc = subprocess.run(
        [sys.executable, str(CONTAINER / "train.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    reason = (dirs["output"] / "failure").read_text()
    assert reason.startswith("TrainingInputError: ")
    assert "Chronos2" in reason
    assert "HF_HUB_OFFLINE" in reason
