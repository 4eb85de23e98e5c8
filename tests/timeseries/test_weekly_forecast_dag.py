"""The ``ag_weekly_forecast`` example under ``dag.test()`` on the local backend, with real AutoGluon:
data generated at run time, fit, backtest (no champion yet), register, gate, forecast, publish."""

from __future__ import annotations

import pytest

from tests.conftest import run_dag, task_states, xcom
from tests.timeseries import TIMESERIES

pytestmark = [*TIMESERIES, pytest.mark.slow]
ITEMS, HORIZON = 8, 6


def test_weekly_forecast_fits_backtests_gates_and_publishes_the_forecast(airflow_db, monkeypatch):
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    monkeypatch.setenv("AG_FORECAST_ITEMS", str(ITEMS))
    monkeypatch.setenv("AG_FORECAST_HORIZON", str(HORIZON))
    monkeypatch.setenv("AG_FORECAST_REGISTRY_GROUP", "ag-test-weekly-demand")
    monkeypatch.setenv("AG_EXAMPLE_TIME_LIMIT", "300")
    run = run_dag("ag_weekly_forecast")
    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    backtest = xcom(run.dag_id, "backtest", run.run_id)
    assert backtest["eval_metric"] == "WQL"
    assert backtest["higher_is_better"] is False
    assert set(backtest["metrics"]) == {"challenger"}  # the first run has no champion
    gate = xcom(run.dag_id, "gate", run.run_id)
    assert gate["decision"] == "approved"
    published = xcom(run.dag_id, "publish", run.run_id)
    forecast = xcom(run.dag_id, "forecast", run.run_id)
    assert published["forecast_uri"] == forecast["output_uri"]
    frame = AutoGluonCloudHook(aws_conn_id=None).read_predict_results(forecast["job_name"])
    assert len(frame) == ITEMS * HORIZON
    assert list(frame.columns) == ["item_id", "timestamp", "mean", "0.1", "0.5", "0.9"]
    assert frame.groupby("item_id").size().eq(HORIZON).all()
