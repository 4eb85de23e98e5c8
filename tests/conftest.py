"""Test session set-up: a throwaway Airflow home with a migrated SQLite database, an isolated
local-backend root, and one real AutoGluon fit shared by every test that needs a trained model."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its home when first imported: point it at a fresh directory before anything else.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="agc-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "example_dags")
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


@pytest.fixture(scope="session")
def local_root() -> Path:
    return Path(os.environ["AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT"])


@pytest.fixture(scope="session")
def churn_frames():
    """(train, test) frames of the bundled synthetic churn data, small enough to fit in seconds."""
    from airflow_autogluon_cloud.example_data import make_churn

    return make_churn(600, seed=1), make_churn(200, seed=2)


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
