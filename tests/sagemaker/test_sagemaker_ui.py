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
    page = _render("endpoints.html", endpoints=[endpoint], backend="sagemaker", view="endpoints")
    assert f"churn-ui v{first.version}" in page
