"""Time series end to end on the local backend, with real AutoGluon: fit with static features and a
known covariate, batch forecasts partitioned by item, a real-time endpoint, a backtest of two
models on the same holdout windows, and the local predictor; each forecast is compared with
``TimeSeriesPredictor.predict`` in this process on the same inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_autogluon_cloud.example_data import make_weekly_demand
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.timeseries import HORIZON, QUANTILES, TIMESERIES, TS_FIT_ARGS

pytestmark = TIMESERIES
NAMED = {
    "target": "demand",
    "prediction_length": HORIZON,
    "freq": "W-SUN",
    "known_covariates_names": ["promo"],
    "quantile_levels": QUANTILES,
    "eval_metric": "WQL",
}
COLUMNS = {"id_column": "store_item", "timestamp_column": "week"}


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def demand():
    return make_weekly_demand(20, 200, seed=7, horizon=HORIZON)


def fit(hook, name: str, history, static, fit_args) -> dict:
    submission = hook.start_training(
        job_name=name,
        train_data=history,
        predictor_type="timeseries",
        predictor_fit_args=fit_args,
        named_init_args=NAMED,
        timeseries_columns=COLUMNS,
        static_features=static,
        max_runtime=900,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=3)
    return hook.training_result(submission.job_name)


@pytest.fixture(scope="module")
def champion(hook, demand) -> dict:
    history, _, static = demand
    return fit(hook, "ag-af-test-ts-champion", history, static, TS_FIT_ARGS)


@pytest.fixture(scope="module")
def predictor(hook, champion, tmp_path_factory):
    return hook.to_local_predictor(champion["model_artifact_uri"], tmp_path_factory.mktemp("ts-predictor"))


def in_process(predictor, history, future, static) -> pd.DataFrame:
    from autogluon.timeseries import TimeSeriesDataFrame

    data = TimeSeriesDataFrame.from_data_frame(history, static_features_df=static.copy(), **COLUMNS)
    known = TimeSeriesDataFrame.from_data_frame(future, **COLUMNS)
    out = pd.DataFrame(predictor.predict(data, known_covariates=known)).reset_index()
    out.columns = [str(c) for c in out.columns]
    return out


def same_forecast(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == ["item_id", "timestamp", "mean", *[str(q) for q in QUANTILES]]
    got = got.sort_values(["item_id", "timestamp"], ignore_index=True)
    expected = expected.sort_values(["item_id", "timestamp"], ignore_index=True)
    assert got["item_id"].astype(str).tolist() == expected["item_id"].astype(str).tolist()
    assert (pd.to_datetime(got["timestamp"]) == expected["timestamp"]).all()
    for column in got.columns[2:]:
        values = got[column].astype(expected[column].dtype).to_numpy()
        assert (values == expected[column].to_numpy()).all(), column


def test_the_fit_is_a_time_series_model_and_loads_as_a_time_series_predictor(champion, predictor):
    from autogluon.timeseries import TimeSeriesPredictor

    assert champion["status"] == "Completed"
    assert champion["predictor_type"] == "timeseries"
    assert champion["metrics"]["eval_metric"] == "WQL"
    assert champion["metrics"]["label"] == "demand"
    assert isinstance(predictor, TimeSeriesPredictor)
    assert predictor.prediction_length == HORIZON
    assert predictor.known_covariates_names == ["promo"]


def test_bad_series_are_refused_before_any_job(hook, demand):
    history, _, static = demand
    duplicated = pd.concat([history, history.iloc[[3]]], ignore_index=True)
    with pytest.raises(InvalidParameterError, match="duplicate"):
        fit(hook, "ag-af-test-ts-duplicates", duplicated, static, TS_FIT_ARGS)
    with pytest.raises(InvalidParameterError, match="every item") as err:
        fit(hook, "ag-af-test-ts-static", history, static.iloc[1:], TS_FIT_ARGS)
    assert err.value.parameter == "static_features"
    assert "ag-af-test-ts-duplicates" not in {j.name for j in hook.backend.list_training_jobs()}


def test_batch_forecast_partitions_by_item_and_equals_predict(hook, champion, predictor, demand, monkeypatch):
    from airflow_autogluon_cloud.kinds import series_io

    history, future, static = demand
    monkeypatch.setattr(series_io, "PART_MAX_BYTES", 60_000)  # several parts of whole items
    submission = hook.start_batch_predict(
        job_name="ag-af-test-ts-batch",
        model_uri=champion["model_artifact_uri"],
        test_data=history,
        known_covariates=future,
        static_features=static,
        instance_count=2,
    )
    hook.wait_for_job("transform", submission.job_name, check_interval=1, max_check_interval=3)
    result = hook.batch_result(submission.job_name)
    assert result["status"] == "Completed"
    assert result["input_uri"].endswith("/test_data/")
    outputs = hook.storage(result["output_uri"]).list(result["output_uri"])
    assert len([uri for uri in outputs if uri.endswith(".out")]) > 1
    got = hook.read_predict_results(submission.job_name)
    assert len(got) == 20 * HORIZON
    same_forecast(got, in_process(predictor, history, future, static))


def test_batch_refuses_missing_known_covariates_before_any_job(hook, champion, demand):
    history, future, _ = demand
    with pytest.raises(InvalidParameterError) as err:
        hook.start_batch_predict(
            job_name="ag-af-test-ts-nocov", model_uri=champion["model_artifact_uri"], test_data=history
        )
    assert err.value.parameter == "known_covariates"
    with pytest.raises(InvalidParameterError, match="horizon"):
        hook.start_batch_predict(
            job_name="ag-af-test-ts-shortcov",
            model_uri=champion["model_artifact_uri"],
            test_data=history,
            known_covariates=future.groupby("store_item").head(3),
        )


@pytest.fixture(scope="module")
def endpoint(hook, champion):
    name = "ag-af-test-ts-endpoint"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=champion["model_artifact_uri"]))
    yield result
    hook.delete_endpoint(name)


def test_real_time_forecast_equals_predict(hook, endpoint, predictor, demand):
    history, future, static = demand
    got = hook.forecast_real_time(endpoint["endpoint_name"], history, known_covariates=future, static_features=static)
    same_forecast(got, in_process(predictor, history, future, static))
    one = history[history["store_item"] == "item_0003"]
    single = hook.forecast_real_time(
        endpoint["endpoint_name"],
        one,
        known_covariates=future[future["store_item"] == "item_0003"],
        static_features=static[static["store_item"] == "item_0003"],
    )
    assert single["item_id"].unique().tolist() == ["item_0003"]
    assert len(single) == HORIZON


def test_predict_operator_counts_a_forecasts_rows_per_item(endpoint, demand):
    """AGPredictOperator against a forecasting endpoint: the kind says a forecast owes
    ``prediction_length`` rows per item, not one per history row."""
    from airflow_autogluon_cloud.operators.predict import AGPredictOperator

    history, future, static = demand
    few = ["item_0001", "item_0002", "item_0005"]
    operator = AGPredictOperator(
        task_id="forecast_smoke",
        aws_conn_id=None,
        endpoint_name=endpoint,
        data=history[history["store_item"].isin(few)],
        known_covariates=future[future["store_item"].isin(few)],
        static_features=static[static["store_item"].isin(few)],
        max_rows_in_xcom=4,
    )
    result = operator.execute({})
    assert result["rows"] == len(few) * HORIZON
    assert len(result["predictions"]) == 4
    assert set(result["predictions"][0]) == {"item_id", "timestamp", "mean", *[str(q) for q in QUANTILES]}
    assert isinstance(result["predictions"][0]["timestamp"], str)


@pytest.fixture(scope="module")
def challenger(hook, demand) -> dict:
    history, _, static = demand
    return fit(hook, "ag-af-test-ts-challenger", history, static, {"hyperparameters": {"Naive": {}}, "verbosity": 1})


def test_backtest_scores_both_models_on_the_same_windows(hook, champion, challenger, demand):
    history, _, static = demand
    submission = hook.evaluation.start(
        job_name="ag-af-test-ts-backtest",
        data=history,
        models={"champion": champion["model_artifact_uri"], "challenger": challenger["model_artifact_uri"]},
        backtest_windows=2,
        static_features=static,
    )
    hook.wait_for_job("evaluation", submission.job_name, check_interval=1, max_check_interval=3)
    result = hook.evaluation.result(submission.job_name)
    assert result["status"] == "Completed", hook.log_tail("evaluation", submission.job_name, 40)
    assert result["eval_metric"] == "WQL"
    assert result["higher_is_better"] is False
    for key in ("champion", "challenger"):
        metrics = result["metrics"][key]
        assert set(metrics) >= {"WQL", "MASE", "RMSE", "WAPE"}
        assert all(value is not None and value >= 0 for value in metrics.values())
    # The seasonal, promotion-aware ensemble beats repeating the last value on the same windows.
    assert result["metrics"]["champion"]["WQL"] < result["metrics"]["challenger"]["WQL"]


def test_fit_and_forecast_in_one_job_equals_predict(hook, demand, tmp_path):
    """``predict_data`` for a time series: the job forecasts the horizon after each series' end,
    and the result says where the forecast is; it equals ``predict`` on the fitted model."""
    from autogluon.timeseries import TimeSeriesDataFrame

    history = demand[0].drop(columns="promo")  # no known covariates: a training job has no future values
    named = {key: value for key, value in NAMED.items() if key != "known_covariates_names"}
    submission = hook.start_training(
        job_name="ag-af-test-ts-fit-forecast",
        train_data=history,
        predictor_type="timeseries",
        predictor_fit_args={"hyperparameters": {"Naive": {}, "SeasonalNaive": {}}, "verbosity": 1},
        named_init_args=named,
        timeseries_columns=COLUMNS,
        predict_data=history,
        max_runtime=900,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=3)
    result = hook.training_result(submission.job_name)
    assert result["predictions"]["member"] == "predictions.jsonl"
    assert result["predictions"]["rows"] == 20 * HORIZON
    assert result["predictions"]["uri"].endswith("output.tar.gz")
    got = hook.read_predict_results(submission.job_name)
    predictor = hook.to_local_predictor(result["model_artifact_uri"], tmp_path / "predictor")
    expected = pd.DataFrame(predictor.predict(TimeSeriesDataFrame.from_data_frame(history, **COLUMNS))).reset_index()
    expected.columns = [str(c) for c in expected.columns]
    same_forecast(got, expected)


def test_fit_and_forecast_is_refused_with_known_covariates_before_any_job(hook, demand):
    history, _, _ = demand
    with pytest.raises(InvalidParameterError, match="known covariates") as err:
        hook.start_training(
            job_name="ag-af-test-ts-fit-forecast-cov",
            train_data=history,
            predictor_type="timeseries",
            predictor_fit_args={"hyperparameters": {"Naive": {}}},
            named_init_args=NAMED,
            timeseries_columns=COLUMNS,
            predict_data=history,
        )
    assert err.value.parameter == "predict_data"
    assert "ag-af-test-ts-fit-forecast-cov" not in {j.name for j in hook.backend.list_training_jobs()}
