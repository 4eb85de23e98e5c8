"""Faults on a real deployment: the triggerer and the scheduler SIGKILLed mid-run and restarted;
five manual runs of the main DAG at once. Each run still succeeds with one training job."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
from datetime import datetime
from pathlib import Path

import pytest

from airflow_autogluon_cloud import polling
from airflow_autogluon_cloud.backends.local.state import StateStore
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.deployment.conftest import DAG_ID, assert_run_succeeded_the_deployed_way, training_jobs_of

pytestmark = [pytest.mark.deployment, pytest.mark.slow]
#: The main DAG's fit polls from this interval up to the default ceiling (example_ag_retrain_and_score.py).
FIT_CHECK_INTERVAL = 5
#: The main DAG's registry group (example_ag_retrain_and_score.py).
REGISTRY_GROUP = "ag-churn"


def _wait_for_fit_deferred(deployment, run_id: str) -> None:
    deployment.wait_until(
        f"fit of {run_id} to defer", lambda: deployment.task_state(DAG_ID, run_id, "fit") == "deferred", timeout=300
    )


def _trigger_logs(deployment, run_id: str) -> dict[int, Path]:
    """The fit trigger's log files by the triggerer job that ran it."""
    logs = deployment.log_files(DAG_ID, run_id, "fit")
    return {int(m.group(1)): p for p in logs if (m := re.search(r"\.trigger\.(\d+)\.", p.name))}


def _logged_times(log: Path, event_pattern: str) -> list[float]:
    """When each line of a trigger's log whose event matches ``event_pattern`` was logged (epoch s)."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if re.search(event_pattern, str(entry.get("event", ""))):
            times.append(datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp())
    return times


def test_triggerer_killed_while_fit_is_deferred(unpaused):
    run_id = "manual__triggerer-killed"
    unpaused.trigger(DAG_ID, run_id)
    _wait_for_fit_deferred(unpaused, run_id)
    # Kill it once the trigger runs there and has checked the job at least once.
    unpaused.wait_until(
        "the fit's trigger to run in the triggerer",
        lambda: any(
            " is InProgress" in p.read_text(errors="replace") for p in _trigger_logs(unpaused, run_id).values()
        ),
        timeout=120,
    )
    unpaused.kill("triggerer")  # SIGKILL, the whole process group
    unpaused.start("triggerer")
    unpaused.wait_healthy()
    assert_run_succeeded_the_deployed_way(unpaused, run_id)
    logs = _trigger_logs(unpaused, run_id)
    # The trigger was rebuilt from serialize() by the new triggerer (a second triggerer job's log)...
    assert len(logs) >= 2, logs
    # ... and resumed its backoff: no burst of status checks after the restart. Judged on the
    # log's own timestamps, so a slow machine (a longer job, more checks) cannot fail it.
    first_check = _logged_times(logs[min(logs)], r" is InProgress$")[0]
    [reborn_at] = _logged_times(logs[max(logs)], r"^trigger .* starting$")
    checks = _logged_times(logs[max(logs)], r" is InProgress$")
    # The reborn trigger sleeps at least the interval its backoff had reached (not the first one)...
    resumed = polling.interval_after(
        reborn_at - first_check, FIT_CHECK_INTERVAL, polling.max_interval(FIT_CHECK_INTERVAL)
    )
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    assert not gaps or gaps[0] >= resumed - 0.2, (resumed, checks)
    # ... and never checks sooner than the first interval (with the backoff's jitter) after that.
    assert all(gap >= 0.9 * FIT_CHECK_INTERVAL - 0.2 for gap in gaps), checks


def test_scheduler_killed_mid_run(unpaused):
    run_id = "manual__scheduler-killed"
    unpaused.trigger(DAG_ID, run_id)
    _wait_for_fit_deferred(unpaused, run_id)
    unpaused.kill("scheduler")
    unpaused.start("scheduler")
    unpaused.wait_healthy()
    assert_run_succeeded_the_deployed_way(unpaused, run_id)


def test_five_manual_runs_at_once_do_not_collide(unpaused):
    registry = AutoGluonCloudHook(aws_conn_id=None, local_root=str(unpaused.local_root)).registry
    champion_before = registry.latest_approved(REGISTRY_GROUP)
    run_ids = [f"manual__load-{i}" for i in range(5)]
    for run_id in run_ids:
        unpaused.trigger(DAG_ID, run_id)
    states = unpaused.wait_for_runs(DAG_ID, run_ids, timeout=1200)
    assert set(states.values()) == {"success"}, states
    store = StateStore(unpaused.local_root)
    jobs = [training_jobs_of(store, run_id) for run_id in run_ids]
    assert all(len(j) == 1 for j in jobs), jobs
    assert len({j[0] for j in jobs}) == 5
    names = [r.name for r in store.list("training")] + [r.name for r in store.list("transform")]
    assert len(names) == len(set(names))
    scored = [
        unpaused.api(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/batch_score/xcomEntries/return_value")["value"]
        for run_id in run_ids
    ]
    assert len({s["output_uri"] for s in scored}) == 5
    # The gates ran concurrently (max_active_runs is lifted here): each approval compared against
    # the champion approved just before it, so the approvals form one chain from the champion the
    # runs started with, and the last link is what the registry serves.
    gates = [
        unpaused.api(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/gate/xcomEntries/return_value")["value"]
        for run_id in run_ids
    ]
    champion_of = {g["challenger_version"]: g["champion_version"] for g in gates if g["decision"] == "approved"}
    link = champion_before.version if champion_before else None
    chain = []
    while link in champion_of.values():
        approved_against = [version for version, champion in champion_of.items() if champion == link]
        assert len(approved_against) == 1, f"versions {approved_against} were all approved against {link}"
        link = approved_against[0]
        chain.append(link)
    assert sorted(chain) == sorted(champion_of), (champion_before, gates)
    latest = registry.latest_approved(REGISTRY_GROUP)
    assert (latest.version if latest else None) == (chain[-1] if chain else link), (chain, latest)


def test_worker_killed_while_streaming_the_training_log_retry_reattaches(deployment):
    dag_id = "agc_deployment_fit_in_worker"
    deployment.wait_for_dag(dag_id)
    deployment.cli("dags", "unpause", dag_id)
    run_id = "manual__worker-killed"
    deployment.trigger(dag_id, run_id)

    def streaming() -> str | None:
        """The fit's task instance id once it runs and the job's log lines reach the task log."""
        ti = deployment.task_instances(dag_id, run_id).get("fit") or {}
        if ti.get("state") != "running":
            return None
        text = "".join(p.read_text(errors="replace") for p in deployment.log_files(dag_id, run_id, "fit"))
        return ti["id"] if "Fitting" in text else None

    ti_id = deployment.wait_until("the fit to stream its training job's log", streaming, timeout=300)
    pid = deployment.task_process(ti_id)
    assert pid, f"no process runs task instance {ti_id}"
    os.kill(pid, signal.SIGKILL)

    states = deployment.wait_for_runs(dag_id, [run_id], timeout=600)
    fit = deployment.task_instances(dag_id, run_id)["fit"]
    assert (states[run_id], fit["try_number"]) == ("success", 2)
    # The retry found the job the killed try started and waited for it: one training job.
    assert len(training_jobs_of(StateStore(deployment.local_root), run_id, dag_id)) == 1
