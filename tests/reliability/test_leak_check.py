"""The suite's leak check (scripts/leakcheck.py) catches what a failed test leaves running.

Each test runs an inner pytest session under the check, as .ci/run runs every stage: one whose test
deploys a real local endpoint and fails before its cleanup, and one that cleans up after itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from airflow_autogluon_cloud.backends.local.state import StateStore
from tests.conftest import REPO

pytestmark = pytest.mark.slow

INNER_TEST = textwrap.dedent(
    """
    import os

    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook


    def test_deploy():
        hook = AutoGluonCloudHook(aws_conn_id=None, local_root=os.environ["INNER_ROOT"])
        plan = hook.start_deploy(endpoint_name="ag-af-leaky", model_uri=os.environ["INNER_MODEL_URI"])
        hook.finish_deploy(plan)
        assert os.environ["INNER_CLEANS_UP"] == "1", "failed before its cleanup"
        hook.delete_endpoint("ag-af-leaky")
    """
)


def _run_inner_stage(tmp_path: Path, model_uri: str, cleans_up: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    root = tmp_path / "root"
    env = {**os.environ, "INNER_ROOT": str(root), "INNER_MODEL_URI": model_uri, "INNER_CLEANS_UP": str(int(cleans_up))}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_inner.py"]
    stage = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "leakcheck.py"), "--stage", "inner", "--", *command],
        cwd=tmp_path,  # outside the repository: the inner session loads none of its conftest
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return stage, root


def test_a_failed_test_that_leaves_an_endpoint_fails_the_stage_and_the_endpoint_is_killed(trained_job, tmp_path):
    stage, root = _run_inner_stage(tmp_path, trained_job["model_artifact_uri"], cleans_up=False)
    output = stage.stdout + stage.stderr
    assert "failed before its cleanup" in output  # the inner test failed as planned...
    assert stage.returncode != 0
    record = StateStore(root).get("endpoint", "ag-af-leaky")
    assert record is not None
    assert record.pid  # ...with its endpoint serving
    assert "leak check: stage 'inner' left" in output, output[-3000:]
    assert f"pid {record.pid:>7}" in output  # listed by pid...
    assert "local_endpoint" in output
    assert (
        not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
    )  # ...and killed


def test_a_stage_that_cleans_up_passes_the_check(trained_job, tmp_path):
    stage, root = _run_inner_stage(tmp_path, trained_job["model_artifact_uri"], cleans_up=True)
    output = stage.stdout + stage.stderr
    assert stage.returncode == 0, output[-3000:]
    assert "leak check: stage 'inner' left nothing running" in output
    assert StateStore(root).get("endpoint", "ag-af-leaky") is None


def test_a_stage_that_passes_but_leaves_a_process_fails_with_its_own_status(tmp_path):
    stage = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "leakcheck.py"), "--stage", "tiny", "--settle", "0.5", "--"]
        + ["bash", "-c", "setsid sleep 600 & exit 0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stage.returncode == 3  # the command passed; the leak alone fails the stage
    assert "sleep 600" in stage.stdout
