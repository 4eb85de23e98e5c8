"""The "AutoGluon" page under a real ``airflow api-server``: authentication through Airflow's auth
manager, edit permission for actions, form-token checks, and escaping of registry text."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import GROUP

pytestmark = [pytest.mark.slow, pytest.mark.compat]
VIEWS = (
    "/autogluon/",
    f"/autogluon/registry/{GROUP}",
    "/autogluon/evaluations",
    "/autogluon/endpoints",
    "/autogluon/jobs",
)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]*)"', page)
    assert match, "the page has no form token"
    return match.group(1)


@pytest.mark.parametrize("path", VIEWS)
def test_every_view_refuses_an_anonymous_request(api_server, path):
    status, body, _ = api_server.request(path)
    assert status in (401, 403), body[:300]


def test_a_forged_token_is_refused(api_server):
    status, _, _ = api_server.request("/autogluon/", token="not.a.jwt")
    assert status in (401, 403)


def test_the_plugin_is_registered_with_a_nav_view(api_server):
    import json

    status, body, _ = api_server.request("/api/v2/plugins", token=api_server.token("admin"))
    assert status == 200, body[:300]
    plugins = {p["name"]: p for p in json.loads(body)["plugins"]}
    assert "autogluon_cloud" in plugins, sorted(plugins)
    views = plugins["autogluon_cloud"]["external_views"]
    assert [(v["name"], v["href"]) for v in views] == [("AutoGluon", "/autogluon/")]


def test_viewer_sees_versions_read_only_and_markup_as_text(api_server, registered_group):
    status, page, _ = api_server.request(f"/autogluon/registry/{GROUP}", token=api_server.token("viewer"))
    assert status == 200, page[:500]
    for version in registered_group["versions"]:
        assert f'data-version="{version}"' in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; challenger" in page
    assert "Read-only" in page
    assert "/approve" not in page
    # the chart: one point per version, approved filled, and the gate's interval bar
    assert page.count('<circle class="point') == 3
    assert 'class="point Approved"' in page
    assert 'class="interval"' in page
    assert "/dags/ag_retrain_and_score/runs/manual__2026-01-02" in page


def test_registry_and_jobs_views_show_what_the_training_job_used(api_server, registered_group, trained_job):
    # on this machine: CPU and wall seconds of the real fit, recorded with the version it produced
    recorded = {k: v for k, v in trained_job["usage"].items() if v is not None}
    assert registered_group["usage"] == recorded
    assert recorded["cpu_seconds"] > 0
    assert "billable_seconds" not in recorded
    token = api_server.token("viewer")
    cpu_line = f"CPU {recorded['cpu_seconds']:.6g} s · wall {recorded['wall_seconds']:.6g} s"
    status, page, _ = api_server.request(f"/autogluon/registry/{GROUP}", token=token)
    assert status == 200, page[:500]
    assert page.count('<div class="usage">') == len(registered_group["versions"])
    assert page.count(cpu_line) == 1  # only the version whose training job exists
    status, page, _ = api_server.request("/autogluon/jobs", token=token)
    assert status == 200, page[:500]
    assert trained_job["job_name"] in page
    assert cpu_line in page


@pytest.mark.parametrize("path", VIEWS[2:])
def test_viewer_can_open_every_other_view(api_server, path, registered_group):
    status, page, _ = api_server.request(path, token=api_server.token("viewer"))
    assert status == 200, page[:500]
    assert "<nav>" in page


def test_viewer_cannot_approve(api_server, registered_group):
    version = registered_group["versions"][1]
    token = api_server.token("viewer")
    status, _, _ = api_server.request(
        f"/autogluon/registry/{GROUP}/versions/{version}/approve", method="POST", token=token, form={"reason": "x"}
    )
    assert status == 403
    assert registered_group["hook"].registry.get(GROUP, version).approval_status == "PendingManualApproval"


def test_a_cookie_post_without_the_form_token_is_refused(api_server, registered_group):
    version = registered_group["versions"][2]
    cookie = api_server.token("admin")
    path = f"/autogluon/registry/{GROUP}/versions/{version}/reject"
    assert api_server.request(path, method="POST", cookie=cookie, form={"reason": "csrf"})[0] == 403
    status, _, _ = api_server.request(
        path,
        method="POST",
        cookie=cookie,
        form={"reason": "csrf", "csrf_token": "0" * 64},
        headers={"Origin": api_server.url},
    )
    assert status == 403
    assert registered_group["hook"].registry.get(GROUP, version).approval_status == "PendingManualApproval"


def test_admin_approves_from_the_page_and_the_registry_records_the_user(api_server, registered_group):
    version = registered_group["versions"][1]
    cookie = api_server.token("admin")
    status, page, _ = api_server.request(f"/autogluon/registry/{GROUP}", cookie=cookie)
    assert status == 200
    assert f"/versions/{version}/approve" in page
    status, _, headers = api_server.request(
        f"/autogluon/registry/{GROUP}/versions/{version}/approve",
        method="POST",
        cookie=cookie,
        form={"reason": "looks good", "csrf_token": _csrf(page)},
        headers={"Origin": api_server.url},
    )
    assert status == 303, headers
    found = registered_group["hook"].registry.get(GROUP, version)
    assert (found.approval_status, found.status_set_by, found.status_reason) == (
        "Approved",
        "airflow-ui:admin",
        "looks good",
    )
    status, page, _ = api_server.request(headers["location"].replace(api_server.url, ""), cookie=cookie)
    assert status == 200
    assert f"latest approved: v{version}" in page


def test_admin_rolls_back_to_the_approved_version_before(api_server, registered_group):
    first, second, _ = registered_group["versions"]
    hook = registered_group["hook"]
    if hook.registry.latest_approved(GROUP).version != second:
        hook.registry.set_approval(GROUP, second, "Approved", "test", "set up the roll back")
    token = api_server.token("admin")
    status, _, _ = api_server.request(f"/autogluon/registry/{GROUP}/rollback", method="POST", token=token, form={})
    assert status == 303
    assert hook.registry.latest_approved(GROUP).version == first
    assert hook.registry.get(GROUP, second).status_set_by == "airflow-ui:admin"
