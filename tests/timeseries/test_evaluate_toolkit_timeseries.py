"""``evaluate.py`` for a time-series model under the real ``sagemaker-training`` toolkit, laid out as
a SageMaker training job delivers it (as ``tests/container/test_evaluate_toolkit.py`` does for
tabular): hyperparameters JSON-encoded, the code as ``sourcedir.tar.gz`` in the ``code`` channel,
the model channel holding ``model.tar.gz`` as is, and the static features in their own channel.
The backtest's scores equal ``TimeSeriesPredictor.evaluate`` in this process on the same windows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_autogluon_cloud.backends.specs import EVALUATION_CODE
from airflow_autogluon_cloud.example_data import make_weekly_demand
from airflow_autogluon_cloud.kinds import get_kind
from airflow_autogluon_cloud.services.staging import build_code_archive
from tests.timeseries import TIMESERIES

pytestmark = [*TIMESERIES, pytest.mark.slow]
HORIZON = 6
COLUMNS = {"id_column": "store_item", "timestamp_column": "week"}
METRICS = ["MASE", "RMSE"]


def test_evaluate_py_backtests_a_time_series_model_under_the_toolkit(tmp_path: Path) -> None:
    from autogluon.timeseries import TimeSeriesDataFrame

    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    history, _, static = make_weekly_demand(8, 80, seed=4, horizon=HORIZON)
    history = history.drop(columns="promo")
    hook = AutoGluonCloudHook(aws_conn_id=None)
    submission = hook.start_training(
        job_name="ag-af-test-ts-eval-toolkit",
        train_data=history,
        static_features=static,
        predictor_type="timeseries",
        timeseries_columns=COLUMNS,
        named_init_args={"target": "demand", "prediction_length": HORIZON, "eval_metric": "WQL"},
        predictor_fit_args={"hyperparameters": {"Naive": {}, "SeasonalNaive": {}}, "verbosity": 1},
        max_runtime=600,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=3)
    model_uri = hook.training_result(submission.job_name)["model_artifact_uri"]
    summary = hook.models.summary(model_uri)

    base = tmp_path / "opt" / "ml"
    data = base / "input" / "data"
    config = base / "input" / "config"
    channels = ("eval_data", "eval_args", "code", "model_champion", "static_features")
    for channel in channels:
        (data / channel).mkdir(parents=True)
    config.mkdir(parents=True)
    history.to_csv(data / "eval_data" / "data.csv", index=False)
    static.to_csv(data / "static_features" / "static.csv", index=False)
    args = {
        "version": 1,
        "label": "demand",
        "problem_type": summary["problem_type"],
        "eval_metric": "WQL",
        "metrics": METRICS,
        "models": {"champion": "model_champion"},
        **get_kind("timeseries").evaluation_args(summary, 2),
        "slices": [],
    }
    (data / "eval_args" / "eval_args.json").write_text(json.dumps(args))
    (data / "code" / "sourcedir.tar.gz").write_bytes(build_code_archive(EVALUATION_CODE))
    shutil.copy(model_uri, data / "model_champion" / "model.tar.gz")
    hyperparameters = {
        "sagemaker_program": "evaluate.py",
        "sagemaker_submit_directory": str(data / "code" / "sourcedir.tar.gz"),
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "ag-af-ts-eval-toolkit",
        "ag_eval_data": "s3://bucket/staging/abc/data.csv",
        "ag_models": json.dumps({"champion": "s3://bucket/model.tar.gz"}),
    }
    (config / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "localhost", "hosts": ["localhost"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AIRFLOW"))}
    env.update(SAGEMAKER_BASE_DIR=str(base), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((base / "output" / "data" / "evaluation.json").read_text())
    assert report["higher_is_better"] is False
    assert report["metric_directions"] == dict.fromkeys(["WQL", *METRICS], False)
    scores = report["models"]["champion"]["metrics"]
    assert set(scores) == {"WQL", *METRICS}

    # The same two windows in this process: the last HORIZON points per item, then the HORIZON before.
    predictor = hook.to_local_predictor(model_uri, tmp_path / "predictor")
    series = TimeSeriesDataFrame.from_data_frame(history, static_features_df=static.copy(), **COLUMNS)
    expected = {name: [] for name in scores}
    for part in (series.slice_by_timestep(None, -HORIZON), series):
        measured = predictor.evaluate(part, metrics=list(scores))
        for name in scores:
            expected[name].append(-measured[name])
    for name, value in scores.items():
        assert value == pytest.approx(sum(expected[name]) / 2, rel=1e-9), name
