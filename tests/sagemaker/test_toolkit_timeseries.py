"""A time-series job under the real SageMaker toolkits: the CreateTrainingJob request recorded under
moto runs through ``sagemaker_training`` (static features channel included), and the model it
leaves answers a JSON envelope through ``sagemaker_inference``'s Transformer with the forecast
``TimeSeriesPredictor.predict`` gives in this process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from airflow_autogluon_cloud.example_data import make_weekly_demand
from airflow_autogluon_cloud.kinds.series_io import envelope
from tests.sagemaker.conftest import REGION
from tests.sagemaker.test_toolkit_contract import ModelServerContext, lay_out_training_container, opt_ml_is
from tests.timeseries import TIMESERIES

pytestmark = [*TIMESERIES, pytest.mark.slow]
HORIZON = 6
COLUMNS = {"id_column": "store_item", "timestamp_column": "week"}


def test_a_time_series_job_trains_and_serves_under_the_toolkits(hook, record, tmp_path):
    from autogluon.timeseries import TimeSeriesDataFrame, TimeSeriesPredictor

    history, future, static = make_weekly_demand(8, 80, seed=4, horizon=HORIZON)
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-ts-toolkit",
        train_data=history,
        static_features=static,
        predictor_type="timeseries",
        timeseries_columns=COLUMNS,
        named_init_args={"target": "demand", "prediction_length": HORIZON, "known_covariates_names": ["promo"]},
        predictor_fit_args={"hyperparameters": {"Naive": {}, "ETS": {}}, "verbosity": 1},
        framework_version="1.5",
    )
    [request] = recorder.calls["CreateTrainingJob"]
    base = lay_out_training_container(request, tmp_path / "ml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))}
    env.update(SAGEMAKER_BASE_DIR=str(base), AWS_REGION=REGION, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    with opt_ml_is(base):
        done = subprocess.run(
            [sys.executable, "-m", "sagemaker_training.cli.train"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    log = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert "Reporting training SUCCESS" in log
    model = base / "model"
    summary = json.loads((model / "training_summary.json").read_text())
    assert summary["predictor_type"] == "timeseries"
    assert summary["timeseries"]["id_column"] == "store_item"
    for module in ("serve.py", "ag_kinds.py", "kind_timeseries.py", "fast_csv.py"):
        assert (model / "code" / module).is_file()

    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
    from sagemaker_inference.transformer import Transformer

    saved_path, saved_env = list(sys.path), dict(os.environ)
    os.environ.update(SAGEMAKER_PROGRAM="serve.py", SAGEMAKER_SUBMIT_DIRECTORY=str(model / "code"))
    sys.path.insert(0, str(model / "code"))
    for name in ("serve", "ag_kinds", "kind_timeseries", "kind_tabular", "kind_multimodal", "fast_csv"):
        sys.modules.pop(name, None)
    try:
        transformer = Transformer(default_inference_handler=DefaultInferenceHandler())
        context = ModelServerContext(model, {"Content-Type": "application/json", "Accept": "text/csv"})
        body = envelope(history, future, static, "week")
        [answer] = transformer.transform([{"body": body}], context)
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        sys.modules.pop("serve", None)
    assert context.status is None, answer
    assert context.content_type == "text/csv"
    text = answer.decode() if isinstance(answer, bytes) else answer
    got = pd.read_csv(io.StringIO(text), float_precision="round_trip")
    predictor = TimeSeriesPredictor.load(str(model))
    data = TimeSeriesDataFrame.from_data_frame(history, static_features_df=static.copy(), **COLUMNS)
    known = TimeSeriesDataFrame.from_data_frame(future, **COLUMNS)
    expected = pd.DataFrame(predictor.predict(data, known_covariates=known)).reset_index()
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    assert len(got) == 8 * HORIZON
    for column in ("mean", "0.1", "0.5", "0.9"):
        assert (got[column].astype(expected[column].dtype).to_numpy() == expected[column].to_numpy()).all()
