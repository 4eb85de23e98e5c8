"""Billable seconds and estimated cost from job descriptions (SageMaker's shapes) and the price table; data check options checked before any job."""

from __future__ import annotations

import datetime

import pytest

from airflow_autogluon_cloud.backends.sagemaker.usage import training_usage, transform_usage
from airflow_autogluon_cloud.backends.specs import JobDescription
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.services.cost import usage
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import JobStatus


def test_training_bills_billable_time_times_instances():
    desc = {"BillableTimeInSeconds": 120, "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 2}}
    assert training_usage(desc) == {"instance_type": "ml.m5.2xlarge", "instance_count": 2, "billable_seconds": 240.0}
    assert training_usage({"ResourceConfig": {"InstanceType": "ml.m5.2xlarge"}})["billable_seconds"] is None


def test_transform_bills_its_run_times_instances():
    start = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.UTC)
    desc = {
        "TransformStartTime": start,
        "TransformEndTime": start + datetime.timedelta(seconds=90),
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 3},
    }
    assert transform_usage(desc) == {"instance_type": "ml.c5.xlarge", "instance_count": 3, "billable_seconds": 270.0}


def test_price_table_gives_an_estimated_cost(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__INSTANCE_PRICES", '{"ml.m5.2xlarge": 0.5}')
    prices = ProviderSettings("local", tmp_path, None, requires_s3=False).instance_prices
    desc = JobDescription(
        "j",
        JobKind.TRAINING,
        JobStatus.COMPLETED,
        usage=training_usage(
            {"BillableTimeInSeconds": 3600, "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 2}}
        ),
    )
    assert usage(desc, prices)["estimated_cost_usd"] == 1.0
    other = JobDescription("j", JobKind.TRAINING, JobStatus.COMPLETED, usage={"instance_type": "ml.p3.2xlarge"})
    assert "estimated_cost_usd" not in usage(other, prices)


def test_a_bad_price_table_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__INSTANCE_PRICES", '{"ml.m5.2xlarge": "cheap"}')
    with pytest.raises(InvalidParameterError, match="instance_prices"):
        ProviderSettings("local", tmp_path, None, requires_s3=False).instance_prices  # noqa: B018


def test_bad_data_check_options_fail_before_any_job():
    from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator

    with pytest.raises(InvalidParameterError, match="data_checks"):
        AGBatchPredictOperator(task_id="b", model_uri="/m/model.tar.gz", test_data="/x.csv", data_checks="loud")
    op = AGBatchPredictOperator(
        task_id="b", model_uri="/nonexistent/model.tar.gz", test_data="/x.csv", data_check_options={"js": 0.2}
    )
    with pytest.raises(InvalidParameterError, match="unknown data check option"):
        op.execute({})


def test_lineage_names_every_batch_check_and_turns_a_summary_into_standard_facets():
    from airflow_autogluon_cloud.container import data_checks
    from airflow_autogluon_cloud.lineage.facets import BATCH_CHECKS, _batch_check_facets

    assert BATCH_CHECKS == data_checks.CHECKS
    summary = {
        "status": "checked",
        "rows": 10,
        "checks": {"completeness_check": ["age"]},
        "column_metrics": {"age": {"count": 10, "nullCount": 3, "min": 1.0, "max": 9.0, "sum": 30.0}},
    }
    facets = _batch_check_facets(summary)
    metrics = facets["dataQualityMetrics"]
    assert metrics.rowCount == 10
    assert (metrics.columnMetrics["age"].nullCount, metrics.columnMetrics["age"].max) == (3, 9.0)
    assertions = facets["dataQualityAssertions"].assertions
    assert [(a.name, a.column) for a in assertions if not a.success] == [("completeness_check", "age")]
    assert sorted(a.name for a in assertions if a.success) == sorted(set(BATCH_CHECKS) - {"completeness_check"})
    assert _batch_check_facets({"status": "not_profiled"}) == {}
    assert "dataQualityAssertions" not in _batch_check_facets({"status": "no_baseline", "rows": 10})
