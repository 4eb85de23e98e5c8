"""The UI's views on the SageMaker backend under moto: the same page code as on the local backend,
reading the registry, the endpoints and the jobs through the hook's services."""

from __future__ import annotations

import pytest

from airflow_autogluon_cloud.ui import pages
from airflow_autogluon_cloud.ui.app import template_environment
from tests.sagemaker.test_sagemaker_lifecycle import put_model

pytestmark = pytest.mark.compat


def _render(template: str, **values) -> str:
    common = {"base": "/autogluon", "airflow_base": "", "user": "admin", "editable": True, "csrf_token": "t"}
    return template_environment().get_template(template).render(**common, message="", **values)


def test_registry_and_endpoints_views_on_sagemaker(hook):
    first = hook.registry.register(
        group="churn-ui",
        model_uri=put_model("ag-af-fit-u1"),
        metrics={"roc_auc": 0.8},
        description="<b>bold</b> claim",
        registered_by="airflow:retrain/manual__1/register",
    )
    second = hook.registry.register(group="churn-ui", model_uri=put_model("ag-af-fit-u2"), metrics={"roc_auc": 0.82})
    hook.registry.set_approval("churn-ui", first.version, "Approved", "airflow-ui:admin", "first")
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-ep-ui", model_uri=first.model_uri))
    _publish_invocations(hook, "ag-af-ep-ui", 5)

    [group] = [g for g in pages.registry(hook) if g["name"] == "churn-ui"]
    assert [v["version"] for v in group["versions"]] == [second.version, first.version]
    assert group["latest_approved"] == first.version
    assert group["versions"][1]["dag_run"] == {"dag": "retrain", "run": "manual__1", "task": "register"}
    assert [p["status"] for p in group["chart"]["points"]] == ["Approved", "PendingManualApproval"]
    page = _render("registry.html", groups=[group], view="registry")
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in page
    assert "<b>bold</b>" not in page

    [endpoint] = [e for e in pages.endpoints(hook) if e["name"] == "ag-af-ep-ui"]
    assert endpoint["version"] == f"churn-ui v{first.version}"
    assert endpoint["instance_count"] == 1
    assert not endpoint["serverless"]
    assert endpoint["console_url"].startswith("https://")
    assert "console.aws.amazon.com" in endpoint["console_url"]
    assert endpoint["invocations"] == 5  # CloudWatch's Invocations sum over the last hour, as the sweep reads it
    page = _render("endpoints.html", endpoints=[endpoint], backend="sagemaker", window_seconds=3600, view="endpoints")
    assert f"churn-ui v{first.version}" in page
    assert '<td class="invocations">5</td>' in page
    assert "(last 1h 00m)" in page


def _publish_invocations(hook, endpoint_name: str, count: int) -> None:
    """What SageMaker publishes to CloudWatch for an endpoint that answered ``count`` requests."""
    import datetime

    hook.backend.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint_name},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                "Timestamp": datetime.datetime.now(datetime.UTC),
                "Value": count,
            }
        ],
    )


def test_jobs_view_shows_a_transforms_data_checks_and_usage_on_sagemaker(hook):
    import json

    import boto3
    import pandas as pd

    from tests.sagemaker.conftest import BUCKET, REGION

    model_uri = put_model("ag-af-fit-uj")
    sub = hook.start_batch_predict(
        job_name="ag-af-bt-ui", model_uri=model_uri, test_data=pd.DataFrame({"x": [1, 2]}), framework_version="1.5.0"
    )
    output = hook.jobs.describe("transform", sub.job_name).artifact_uri
    # The report the batch checks leave beside the output (BatchService.data_report), two violations.
    violations = {
        "violations": [
            {"feature_name": "plan", "constraint_check_type": "categorical_values_check", "description": "x"},
            {"feature_name": "tenure", "constraint_check_type": "missing_column_check", "description": "y"},
        ]
    }
    key = output.removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/constraint_violations.json"
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=json.dumps(violations).encode())

    [row] = [j for j in pages.jobs(hook) if j["name"] == sub.job_name]
    assert row["data_checks"] == {
        "violations": 2,
        "checks": {"categorical_values_check": ["plan"], "missing_column_check": ["tenure"]},
        "violations_uri": f"s3://{BUCKET}/{key}",
    }
    # moto starts and ends a transform at once: zero billable seconds, on the requested instances
    assert row["usage"] == {"instance_type": "ml.m5.2xlarge", "instance_count": 1, "billable_seconds": 0.0}
    page = _render("jobs.html", jobs=[row], view="jobs")
    assert 'data-violations="2"' in page
    assert "categorical_values_check: plan" in page
    assert "billable 0 s" in page
