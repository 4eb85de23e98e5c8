"""Weekly demand forecasting: fit, backtest against the champion, gate, forecast, publish.

Every week this DAG:

1. writes the period's data: the weekly demand history of every store item (a bundled synthetic
   generator stands in for the export), the planned promotions for the coming weeks (a known
   covariate: the forecast needs them) and each item's static features;
2. fits a time-series predictor (the challenger) on the history;
3. backtests the challenger and the current champion (the registry's latest approved version)
   **on the same holdout windows** (the last weeks of every item), with AutoGluon's time-series
   metrics (WQL, MASE, ...), in one evaluation job;
4. registers the challenger with those metrics, and gates it: approved only if its WQL beats the
   champion's;
5. forecasts the next weeks of every item with the latest approved version (a batch job that
   never splits a series);
6. publishes the forecast as an Airflow Asset.

Runs on the local backend with no AWS account; needs the ``timeseries`` extra
(``pip install "airflow-provider-autogluon-cloud[timeseries]"``).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, task

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.evaluate import AGEvaluateOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.operators.registry import AGPromoteModelOperator, AGRegisterModelOperator

PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
REGISTRY_GROUP = os.environ.get("AG_FORECAST_REGISTRY_GROUP", "ag-weekly-demand")
CHAMPION = {"registry": REGISTRY_GROUP, "version": "latest-approved"}
#: Weeks forecast ahead; the promotion plan covers them.
HORIZON = int(os.environ.get("AG_FORECAST_HORIZON", "8"))
ITEMS = int(os.environ.get("AG_FORECAST_ITEMS", "30"))
WEEKS = 156
#: Named models: no foundation model, so no download from the Hugging Face hub.
MODELS = {"SeasonalNaive": {}, "ETS": {}, "DirectTabular": {}, "RecursiveTabular": {}}
FORECAST_ASSET = Asset(name="ag_weekly_demand_forecast")
PERIOD = "ti.xcom_pull(task_ids='prepare_period_data')"


# --8<-- [start:example_weekly_forecast]
with DAG(
    dag_id="ag_weekly_forecast",
    description="Forecast weekly demand per item; promote a model only if it backtests better than the champion.",
    schedule="@weekly",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["autogluon", "example", "timeseries"],
) as dag:

    @task
    def prepare_period_data(**context: Any) -> dict[str, str]:
        """Write the history, the promotion plan for the horizon and the static features."""
        from airflow_autogluon_cloud.example_data import make_weekly_demand

        run = context["dag_run"]
        logical = context.get("logical_date")
        period = logical.strftime("%Y-%m-%d") if logical else hashlib.sha256(run.run_id.encode()).hexdigest()[:12]
        seed = int(hashlib.sha256(period.encode()).hexdigest()[:8], 16)
        history, promotions, static = make_weekly_demand(ITEMS, WEEKS, seed=seed % 1000, horizon=HORIZON)
        out = Path(PERIODS_ROOT) / "weekly_demand" / period
        out.mkdir(parents=True, exist_ok=True)
        paths = {"history": out / "history.csv", "promotions": out / "promotions.csv", "static": out / "static.csv"}
        history.to_csv(paths["history"], index=False)
        promotions.to_csv(paths["promotions"], index=False)
        static.to_csv(paths["static"], index=False)
        return {"period": period, **{key: str(path) for key, path in paths.items()}}

    period = prepare_period_data()

    fit = AGFitOperator(
        task_id="fit",
        predictor_type="timeseries",
        train_data="{{ " + PERIOD + "['history'] }}",
        static_features="{{ " + PERIOD + "['static'] }}",
        id_column="store_item",
        timestamp_column="week",
        target="demand",
        prediction_length=HORIZON,
        freq="W-SUN",
        known_covariates_names=["promo"],
        quantile_levels=[0.1, 0.5, 0.9],
        eval_metric="WQL",
        predictor_fit_args={
            "hyperparameters": MODELS,
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "120")),
        },
        max_runtime=1800,
        check_interval=5,
    )

    backtest = AGEvaluateOperator(
        task_id="backtest",
        data="{{ " + PERIOD + "['history'] }}",
        static_features="{{ " + PERIOD + "['static'] }}",
        models={"challenger": fit.output, "champion": CHAMPION},
        optional_models=["champion"],  # the first run has no champion yet
        backtest_windows=2,
        max_runtime=1800,
        check_interval=2,
    )

    register = AGRegisterModelOperator(
        task_id="register",
        group=REGISTRY_GROUP,
        model_uri=fit.output,
        evaluation=backtest.output,
        model_key="challenger",
        description="Weekly demand forecaster, period {{ " + PERIOD + "['period'] }}",
    )

    gate = AGPromoteModelOperator(
        task_id="gate",
        group=REGISTRY_GROUP,
        challenger_version=register.output,
        evaluation=backtest.output,
        # Backtest errors are averaged over windows, with no paired intervals: compare the point estimates.
        confidence=None,
    )

    forecast = AGBatchPredictOperator(
        task_id="forecast",
        model_uri=CHAMPION,  # after the gate: the challenger if approved, else the champion
        test_data="{{ " + PERIOD + "['history'] }}",
        known_covariates="{{ " + PERIOD + "['promotions'] }}",
        static_features="{{ " + PERIOD + "['static'] }}",
        instance_count=2,
        check_interval=5,
    )

    @task(outlets=[FORECAST_ASSET])
    def publish(decision: dict, forecasted: dict, *, outlet_events=None) -> dict:
        """Publish the forecast (its location and the model version that made it) as an Asset."""
        in_use = forecasted["model_version"]
        outlet_events[FORECAST_ASSET].extra = {
            "forecast_uri": forecasted["output_uri"],
            "model_uri": in_use["model_uri"],
            "registry_version": in_use["version"],
            "decision": decision["decision"],
        }
        return {"forecast_uri": forecasted["output_uri"], "registry_version": in_use["version"]}

    gate >> forecast
    publish(gate.output, forecast.output)
# --8<-- [end:example_weekly_forecast]
