"""Test session set-up: a throwaway Airflow home with a migrated SQLite database, an isolated
local-backend root, and one real AutoGluon fit shared by every test that needs a trained model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

# Airflow reads its home when first imported: point it at a fresh directory before anything else.
# Subprocesses started by tests inherit the session (same database, same local-backend root).
_SESSION_DIR = Path(os.environ.get("AGC_TEST_SESSION_DIR") or tempfile.mkdtemp(prefix="agc-tests-"))
os.environ["AGC_TEST_SESSION_DIR"] = str(_SESSION_DIR)
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# dag.test() only runs DAGs found in the dags folder: link the example DAGs and the test DAGs there.
_DAGS = _SESSION_DIR / "dags"
if not _DAGS.exists():
    _DAGS.mkdir()
    for _folder in ("example_dags", "tests/dags"):
        for _file in (Path(__file__).resolve().parent.parent / _folder).glob("*.py"):
            (_DAGS / _file.name).symlink_to(_file)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["AG_EXAMPLE_PERIODS_ROOT"] = str(_SESSION_DIR / "periods")
os.environ["AGC_TEST_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"] = str(_SESSION_DIR / "agc-local")
os.environ.pop("AIRFLOW__AUTOGLUON_CLOUD__BACKEND", None)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# No real AWS is reachable; make sure nothing picks up a developer's credentials.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parent.parent
FAST_FIT_ARGS = {"time_limit": 60, "hyperparameters": {"GBM": {"num_boost_round": 40}}, "verbosity": 1}
LABEL = "churned"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's SQLite metadata database once (needed by ``dag.test()``)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return home


_JOB_KINDS = ("training", "transform", "evaluation")


def _running_local_resources(root: Path) -> set[tuple[str, str]]:
    """(kind, name) of every endpoint and every unfinished job recorded by the local backend at ``root``."""
    from airflow_autogluon_cloud.backends.local.state import StateStore

    store = StateStore(root)
    running = {("endpoint", r.name) for r in store.list("endpoint")}
    for kind in _JOB_KINDS:
        running |= {(kind, r.name) for r in store.list(kind) if r.status in ("InProgress", "Stopping")}
    return running


def _local_roots(tmp: Path | None) -> list[Path]:
    """The session's local-backend root and any a test made under its ``tmp_path`` (one or two levels down)."""
    roots = [Path(os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"])]
    if tmp is not None:
        roots += [db.parent for pattern in ("*/state.db", "*/*/state.db") for db in tmp.glob(pattern)]
    return [root for root in roots if (root / "state.db").exists()]


@pytest.fixture(autouse=True)
def _stop_what_the_test_started(request):
    """A finaliser for every test: endpoints and jobs the test started on the local backend and left
    running (a failed assertion skips a cleanup in the test body) are deleted or stopped here.

    Set up before any other function-scoped fixture, so what session and module fixtures started
    (a shared endpoint, say) is in the snapshot and left alone; torn down after all of them.
    """
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    before = {root: _running_local_resources(root) for root in _local_roots(tmp)}
    yield
    from airflow_autogluon_cloud.backends.local.backend import LocalBackend

    for root in _local_roots(tmp):
        left = sorted(_running_local_resources(root) - before.get(root, set()))
        if not left:
            continue
        backend = LocalBackend(root)
        for kind, name in left:
            print(f"cleanup: {kind} {name} (under {root}) was still running after {request.node.nodeid}")
            try:
                if kind == "endpoint":
                    backend.delete_endpoint(name)
                else:
                    backend.stop_job(kind, name)
            except Exception as err:  # one failed cleanup must not keep the others from running
                print(f"cleanup: could not stop {kind} {name}: {err}")


@pytest.fixture(scope="session")
def local_root() -> Path:
    return Path(os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"])


@pytest.fixture(scope="session")
def churn_frames():
    """(train, test) frames of the synthetic churn data, small enough to fit in seconds.

    Also written as CSV files under ``$AGC_TEST_DATA_DIR`` for the test DAGs.
    """
    from airflow_autogluon_cloud.example_data import make_churn

    train, test = make_churn(600, seed=1), make_churn(200, seed=2, with_label=False)
    data_dir = Path(os.environ["AGC_TEST_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    train.to_csv(data_dir / "train.csv", index=False)
    test.to_csv(data_dir / "test.csv", index=False)
    return train, test


def run_dag(dag_id: str, **kwargs):
    """Run a DAG from the dags folder with ``dag.test()`` and return the finished DagRun."""
    from airflow_autogluon_cloud.settings import load_dag_bag

    bag = load_dag_bag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id).test(**kwargs)


def task_deferred_class() -> type[Exception]:
    """``TaskDeferred``, raised by ``self.defer()``: ``airflow.sdk.exceptions`` (3.2+), else
    ``airflow.exceptions`` (3.1, whose Task SDK does not have it yet)."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined,unused-ignore]
    return TaskDeferred


def xcom(dag_id: str, task_id: str, run_id: str, key: str = "return_value"):
    """A task's XCom value from the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag_id, task_id=task_id, run_id=run_id, key=key).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def task_states(dag_run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return {ti.task_id: str(ti.state) for ti in tis}


@pytest.fixture(scope="session")
def trained_job(churn_frames) -> dict:
    """One real local AutoGluon fit, shared by the tests that need a trained model."""
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    train, _ = churn_frames
    hook = AutoGluonCloudHook(aws_conn_id=None)
    submission = hook.start_training(
        job_name="ag-af-test-shared-fit",
        train_data=train,
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args=FAST_FIT_ARGS,
        max_runtime=600,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=2)
    return hook.training_result(submission.job_name)


def job_in_progress_logging(backend, kind: str, name_part: str, marker: str, lines: int = 50):
    """A ``ready()`` for :func:`kill_worker_running_dag_when`: a ``kind`` job whose name contains
    ``name_part`` is InProgress and its log already shows ``marker`` (the work has begun)."""

    def ready() -> bool:
        return any(
            name_part in r.name and r.status == "InProgress" and marker in backend.log_tail(kind, r.name, lines)
            for r in backend.store.list(kind)
        )

    return ready


def kill_worker_paused_at(
    dag_id: str, logical: datetime, target: str, *, when: str, marker: Path, timeout: float = 600
) -> None:
    """Run ``dag_id`` in a worker subprocess that stops at a chosen point, then SIGKILL it there.

    The worker replaces ``target`` (``"module:Class.method"`` or ``"module:function"``) with a
    version that, ``when="before"`` the original runs or ``when="after"`` it returned, writes
    ``marker`` and sleeps: the kill lands in exactly that window, however busy the machine is.
    """
    if when not in ("before", "after"):
        raise ValueError(f"when must be 'before' or 'after', not {when!r}")
    module, _, attribute = target.partition(":")
    prelude = textwrap.dedent(
        f"""
        import importlib, time
        from pathlib import Path
        owner = importlib.import_module({module!r})
        *path, name = {attribute!r}.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def paused(*args, **kwargs):
            if {when!r} == "after":
                original(*args, **kwargs)
            Path({str(marker)!r}).write_text("paused {when} {target}")
            while True:
                time.sleep(60)

        setattr(owner, name, paused)
        """
    )
    kill_worker_running_dag_when(dag_id, logical, marker.exists, timeout=timeout, prelude=prelude)


def kill_worker_running_dag_when(
    dag_id: str, logical: datetime, ready, timeout: float = 180, prelude: str = ""
) -> None:
    """Run ``dag_id`` in a worker subprocess and SIGKILL it as soon as ``ready()`` is true."""
    script = prelude + textwrap.dedent(
        f"""
        import os
        from datetime import datetime, timezone
        from tests.conftest import run_dag
        # Importing conftest points the local backend at the session's root: keep the caller's.
        os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"] = {os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"]!r}
        ld = datetime.fromisoformat("{logical.isoformat()}")
        run_dag("{dag_id}", logical_date=ld, run_after=ld)
        """
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                return
            assert worker.poll() is None, "the worker finished before it could be killed"
            time.sleep(0.2)
        raise AssertionError("the condition to kill the worker never came true")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
