"""A real Airflow deployment for the ``deployment`` stage: scheduler, triggerer, api-server and
dag-processor as separate processes on loopback, each in its own process group, sharing one
AIRFLOW_HOME (SQLite, LocalExecutor) with the example DAGs and ``default_deferrable = True``.

One deployment serves the whole stage (module ``tests/deployment``); components can be killed
and restarted one at a time, as an operator of Airflow would see them fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.local.state import StateStore
from tests.conftest import REPO

#: The main DAG: what the README's main job runs.
DAG_ID = "ag_retrain_and_score"
COMPONENTS = ("scheduler", "triggerer", "dag-processor", "api-server")
_HEALTHY = {"metadatabase", "scheduler", "triggerer", "dag_processor"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowDeployment:
    """Airflow's components as real processes; the REST API and the CLI to drive them.

    :param home: the deployment's own AIRFLOW_HOME.
    :param local_root: the local backend's state directory (shared by every component).
    """

    def __init__(self, home: Path, local_root: Path) -> None:
        self.home = home
        self.local_root = local_root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self._dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # The API server and the task runners' execution API move together off port 8080.
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # A killed component's work is picked up within seconds, not Airflow's default minutes.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT": str(local_root),
            "AG_EXAMPLE_PERIODS_ROOT": str(home / "periods"),
            "AG_EXAMPLE_TIME_LIMIT": "10",
            # Runs of the main DAG may overlap here, so the gate's compare-and-set is what keeps them apart.
            "AG_EXAMPLE_MAX_ACTIVE_RUNS": "5",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        }

    def _dags_folder(self) -> Path:
        """The example DAGs and this stage's own, linked into one folder."""
        folder = self.home / "dags"
        folder.mkdir(exist_ok=True)
        for source in [*(REPO / "example_dags").glob("*.py"), *(Path(__file__).parent / "dags").glob("*.py")]:
            link = folder / source.name
            if not link.exists():
                link.symlink_to(source)
        return folder

    # processes -------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            cwd=self.home,
        )

    def start(self, component: str) -> None:
        """Start one component in its own process group (``setsid``), logging to ``<home>/<name>.log``."""
        log = open(self.home / f"{component}.log", "ab")
        self.processes[component] = subprocess.Popen(
            [sys.executable, "-m", "airflow", component],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        """Signal a component's whole process group, and reap it."""
        proc = self.processes.pop(component)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def stop(self) -> None:
        for component in list(self.processes):
            proc = self.processes[component]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for component, proc in list(self.processes.items()):
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            self.processes.pop(component, None)

    # the REST API ----------------------------------------------------------------------------

    def api(self, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def wait_until(self, what: str, check: Any, timeout: float = 300, every: float = 1.0) -> Any:
        """Poll ``check()`` until it returns something truthy; fail with ``what`` on time-out."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except (urllib.error.URLError, ConnectionError, OSError) as err:
                last = err
            else:
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")

    def healthy(self) -> bool:
        health = self.api("/monitor/health")
        return all(health.get(part, {}).get("status") == "healthy" for part in _HEALTHY)

    def wait_healthy(self, timeout: float = 240) -> None:
        self.wait_until("every component to report healthy", self.healthy, timeout)

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> None:
        def parsed() -> bool:
            try:
                return bool(self.api(f"/dags/{dag_id}"))
            except urllib.error.HTTPError:
                return False

        self.wait_until(f"DAG {dag_id} to be parsed", parsed, timeout)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api(f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float = 900) -> dict[str, str]:
        """Wait until every run in ``run_ids`` has finished; return their states."""

        def finished() -> dict[str, str] | None:
            states = {r["dag_run_id"]: r["state"] for r in self.runs(dag_id) if r["dag_run_id"] in run_ids}
            done = len(states) == len(run_ids) and all(s in ("success", "failed") for s in states.values())
            return states if done else None

        return self.wait_until(f"runs {run_ids} of {dag_id} to finish", finished, timeout, every=2)

    def trigger(self, dag_id: str, run_id: str) -> None:
        """``airflow dags trigger``, as a person runs it: the run has no logical date."""
        self.cli("dags", "trigger", dag_id, "--run-id", run_id)

    def task_process(self, ti_id: str) -> int | None:
        """The PID of the process running a task instance (Airflow titles it ``airflow worker -- <ti id>``)."""
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            if f"airflow worker -- {ti_id}" in " ".join(proc.info["cmdline"] or []):
                return int(proc.pid)
        return None

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.task_instances(dag_id, run_id).get(task_id, {}).get("state")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        tis = self.api(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob("*")) if folder.is_dir() else []


def training_jobs_of(store: StateStore, run_id: str, dag_id: str = DAG_ID) -> list[str]:
    """The training jobs the run's fit task started (its name, and any ``-rN`` generations)."""
    base = naming.deterministic_name("fit", dag_id, "fit", run_id)
    names = {naming.generation_name(base, generation) for generation in range(20)}
    return sorted(r.name for r in store.list("training") if r.name in names)


def assert_run_succeeded_the_deployed_way(deployment, run_id: str) -> None:
    """The run succeeded, its fit waited in the triggerer, it made one job, its link resolves."""
    [state] = deployment.wait_for_runs(DAG_ID, [run_id]).values()
    not_ok = {t: ti["state"] for t, ti in deployment.task_instances(DAG_ID, run_id).items() if ti["state"] != "success"}
    assert (state, not_ok) == ("success", {}), f"run {run_id} is {state}"
    # fit deferred, and its trigger ran in the triggerer process: Airflow wrote the trigger's log
    logs = [p.name for p in deployment.log_files(DAG_ID, run_id, "fit")]
    assert any(".trigger." in name for name in logs), logs
    # one training job for the run, however its tasks were scheduled, deferred and resumed
    assert len(training_jobs_of(StateStore(deployment.local_root), run_id)) == 1
    # the extra link resolves through the REST API to the job's log
    links = deployment.api(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/fit/links")["extra_links"]
    url = links.get("AutoGluon Training Job") or ""
    assert url.startswith("file://"), links
    assert url.endswith("/job.log"), links


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("airflow-deployment")
    airflow = AirflowDeployment(home, home / "agc-local")
    migrate = airflow.cli("db", "migrate", check=False, timeout=600)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    for component in COMPONENTS:
        airflow.start(component)
    try:
        airflow.wait_healthy()
        yield airflow
    finally:
        airflow.stop()
        for component in COMPONENTS:
            log = home / f"{component}.log"
            if log.exists():
                # Kept in the test's temp dir; the tail helps when a run fails in CI.
                print(f"--- {component}.log (last lines) ---")
                print("\n".join(log.read_text(errors="replace").splitlines()[-15:]))


@pytest.fixture(scope="session")
def unpaused(deployment):
    """The deployment with the main DAG parsed and unpaused (its catch-up run starts)."""
    deployment.wait_for_dag(DAG_ID)
    deployment.cli("dags", "unpause", DAG_ID)
    return deployment
