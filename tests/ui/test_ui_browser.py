"""The "AutoGluon" page in a real browser (Debian's chromium, headless, driven by Playwright): log in
through Airflow's login page, open the page from Airflow's navigation, see the versions of a group
the suite registered and evaluated, approve one, and check the registry changed. Each view is
saved as a screenshot under the folder the test prints (``AGC_SCREENSHOTS_DIR``, default
``.ci-logs/screenshots``); ``scripts/setup-browser.sh`` installs the browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import FAST_FIT_ARGS, LABEL, REPO
from tests.ui.conftest import PASSWORDS

pytestmark = [pytest.mark.ui, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_GROUP = "ui-browser"


@pytest.fixture(scope="module")
def screenshots(request) -> Path:
    folder = Path(os.environ.get("AGC_SCREENSHOTS_DIR") or REPO / ".ci-logs" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown even under pytest's output capture
        print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def evaluated_group(trained_job) -> dict:
    """A champion (the shared fit, approved) and a challenger (a second fit), scored in one real
    evaluation job with a slice, and the challenger put through the promotion gate."""
    from airflow_autogluon_cloud.example_data import make_churn
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    hook = AutoGluonCloudHook(aws_conn_id=None)

    fit = hook.start_training(
        job_name="ag-af-test-ui-challenger",
        train_data=make_churn(900, seed=7),
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args=FAST_FIT_ARGS,
        max_runtime=600,
    )
    hook.wait_for_job("training", fit.job_name, check_interval=1, max_check_interval=2)
    challenger_uri = hook.training_result(fit.job_name)["model_artifact_uri"]
    evaluation = hook.evaluation.start(
        job_name="ag-af-test-ui-eval",
        data=make_churn(400, seed=11),
        models={"champion": trained_job["model_artifact_uri"], "challenger": challenger_uri},
        slices=["plan"],
        n_resamples=200,
    )
    hook.wait_for_job("evaluation", evaluation.job_name, check_interval=1, max_check_interval=2)
    result = hook.evaluation.result(evaluation.job_name)
    champion = hook.registry.register(
        group=BROWSER_GROUP,
        model_uri=trained_job["model_artifact_uri"],
        metrics={"roc_auc": result["metrics"]["champion"]["roc_auc"]},
        dataset=result["data_uri"],
        registered_by="airflow:ag_retrain_and_score/manual__ui-1/register_model",
        description="the shared fit",
    )
    hook.registry.set_approval(BROWSER_GROUP, champion.version, "Approved", "airflow:setup", "first version")
    challenger = hook.registry.register(
        group=BROWSER_GROUP,
        model_uri=challenger_uri,
        metrics={"roc_auc": result["metrics"]["challenger"]["roc_auc"]},
        dataset=result["data_uri"],
        registered_by="airflow:ag_retrain_and_score/manual__ui-2/register_model",
        description="a second fit on more rows",
    )
    decision = hook.registry.promote(
        group=BROWSER_GROUP,
        challenger_version=challenger.version,
        evaluation={**result, "model_versions": {"champion": {"group": BROWSER_GROUP, "version": champion.version}}},
        set_by="airflow:ag_retrain_and_score/manual__ui-2/promote",
        min_improvement=1.0,  # a bar no model clears: the challenger stays for a person to approve
        slices=["plan"],
        min_slice_rows=20,
    )
    assert decision["decision"] == "rejected"
    pending = hook.registry.register(
        group=BROWSER_GROUP,
        model_uri=challenger_uri,
        training_job="ag-af-test-ui-challenger-review",
        metrics={"roc_auc": result["metrics"]["challenger"]["roc_auc"]},
        registered_by="airflow:ag_retrain_and_score/manual__ui-3/register_model",
        description="waiting for a person",
    )
    return {"hook": hook, "evaluation": evaluation.job_name, "pending": pending.version}


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: run scripts/setup-browser.sh")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-browser.sh")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def test_log_in_see_versions_approve_and_screenshot_every_view(api_server, evaluated_group, browser, screenshots):
    hook, pending = evaluated_group["hook"], evaluated_group["pending"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{api_server.url}/", wait_until="networkidle")
        page.fill('input[name="username"]', "admin")
        page.fill('input[name="password"]', PASSWORDS["admin"])
        page.click('button[type="submit"]')
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
        assert any(cookie["name"] == "_token" for cookie in context.cookies())

        # from Airflow's own navigation: the external view opens the page inside the UI
        page.goto(f"{api_server.url}/plugin/autogluon", wait_until="networkidle")
        frame = page.frame_locator("iframe").first
        frame.locator(f"#group-{BROWSER_GROUP}").wait_for(timeout=60_000)
        page.screenshot(path=str(screenshots / "airflow-nav.png"))

        page.goto(f"{api_server.url}/autogluon/registry/{BROWSER_GROUP}", wait_until="load")
        rows = page.locator("tr.version")
        assert rows.count() == 3
        assert page.locator(f'tr.version[data-version="{pending}"]').get_attribute("data-status") == (
            "PendingManualApproval"
        )
        assert page.locator("svg circle.point").count() == 3
        page.screenshot(path=str(screenshots / "registry.png"), full_page=True)

        page.locator(f'tr.version[data-version="{pending}"] button[value="approve"]').click()
        page.wait_for_url(lambda url: "message=" in url, timeout=60_000)
        assert page.locator(f'tr.version[data-version="{pending}"]').get_attribute("data-status") == "Approved"
        assert "Approved" in page.locator(".message").inner_text()
        page.screenshot(path=str(screenshots / "registry-approved.png"), full_page=True)
        found = hook.registry.get(BROWSER_GROUP, pending)
        assert (found.approval_status, found.status_set_by) == ("Approved", "airflow-ui:admin")

        page.goto(f"{api_server.url}/autogluon/evaluations/{evaluated_group['evaluation']}", wait_until="load")
        assert page.locator("table.side-by-side th").count() == 3  # the metric column and both models
        assert "Rejected" in page.locator(".decision").first.inner_text()
        page.screenshot(path=str(screenshots / "evaluation.png"), full_page=True)
        for view in ("endpoints", "jobs"):
            page.goto(f"{api_server.url}/autogluon/{view}", wait_until="load")
            page.screenshot(path=str(screenshots / f"{view}.png"), full_page=True)
        assert "ag-af-test-ui-eval" in page.content()
    finally:
        context.close()


def test_viewer_sees_a_read_only_page(api_server, evaluated_group, browser, screenshots):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "_token", "value": api_server.token("viewer"), "url": api_server.url}])
    page = context.new_page()
    try:
        page.goto(f"{api_server.url}/autogluon/registry/{BROWSER_GROUP}", wait_until="load")
        assert page.locator("tr.version").count() == 3
        assert page.locator("button").count() == 0
        assert "read-only" in page.locator("nav").inner_text()
        page.screenshot(path=str(screenshots / "registry-read-only.png"), full_page=True)
    finally:
        context.close()
