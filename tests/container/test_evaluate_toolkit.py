"""``evaluate.py`` under the real ``sagemaker-training`` toolkit, laid out as a SageMaker training
job delivers it: hyperparameters JSON-encoded, the code as ``sourcedir.tar.gz`` in the ``code``
channel, and each model channel holding its ``model.tar.gz`` as is (not unpacked). The same model is given twice, as
champion and challenger, so the paired statistics have a known answer: no difference at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_autogluon_cloud.backends.specs import EVALUATION_CODE
from airflow_autogluon_cloud.example_data import make_churn
from airflow_autogluon_cloud.services.staging import build_code_archive

pytestmark = pytest.mark.slow


def test_evaluate_py_runs_under_the_sagemaker_training_toolkit(trained_job, tmp_path: Path) -> None:
    base = tmp_path / "opt" / "ml"
    data = base / "input" / "data"
    config = base / "input" / "config"
    channels = ("eval_data", "eval_args", "code", "model_champion", "model_challenger")
    for channel in channels:
        (data / channel).mkdir(parents=True)
    config.mkdir(parents=True)
    holdout = make_churn(150, seed=9)
    holdout.to_csv(data / "eval_data" / "data.csv", index=False)
    args = {
        "version": 1,
        "label": "churned",
        "problem_type": "binary",
        "eval_metric": "roc_auc",
        "metrics": ["accuracy", "log_loss"],
        "models": {"champion": "model_champion", "challenger": "model_challenger"},
        "slices": ["region"],
        "n_resamples": 200,
    }
    (data / "eval_args" / "eval_args.json").write_text(json.dumps(args))
    (data / "code" / "sourcedir.tar.gz").write_bytes(build_code_archive(EVALUATION_CODE))
    for channel in ("model_champion", "model_challenger"):
        shutil.copy(trained_job["model_artifact_uri"], data / channel / "model.tar.gz")
    hyperparameters = {
        "sagemaker_program": "evaluate.py",
        "sagemaker_submit_directory": str(data / "code" / "sourcedir.tar.gz"),
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "ag-af-eval-toolkit",
        "ag_eval_data": "s3://bucket/staging/abc/data.csv",
        "ag_models": json.dumps({"champion": "s3://bucket/model.tar.gz"}),
    }
    # SageMaker writes every value JSON-encoded, as the SDK sends them
    (config / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))
    # the toolkit waits until every host name resolves: "localhost" does here, as "algo-1" does on SageMaker
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "localhost", "hosts": ["localhost"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AIRFLOW"))}
    env["SAGEMAKER_BASE_DIR"] = str(base)
    done = subprocess.run(
        [sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((base / "output" / "data" / "evaluation.json").read_text())
    assert report["num_rows"] == 150
    assert report["class_counts"] == holdout["churned"].value_counts().sort_index().to_dict()
    assert set(report["models"]["champion"]["metrics"]) == {"roc_auc", "accuracy", "log_loss"}
    assert report["models"]["champion"]["metrics"]["roc_auc"] > 0.75
    assert report["metric_directions"] == {"roc_auc": True, "accuracy": True, "log_loss": False}
    # the paired statistics ran inside the job: the same model twice differs by exactly nothing
    compared = report["comparisons"]["challenger"]
    assert compared["baseline"] == "champion"
    assert compared["n_resamples"] == 200
    roc = compared["metrics"]["roc_auc"]
    assert roc["difference"] == 0.0
    assert roc["intervals"]["0.95"] == [0.0, 0.0]
    assert roc["test"] == "DeLong"
    assert roc["p_value"] == 1.0
    assert compared["metrics"]["accuracy"]["test"] == "McNemar exact"
    assert compared["metrics"]["log_loss"]["intervals"]["0.95"] == [0.0, 0.0]
    regions = compared["slices"]["region"]
    assert sum(s["num_rows"] for s in regions.values()) == 150
    assert set(regions) == set(holdout["region"].astype(str))
    # the per-row evidence, keyed by row, beside the report
    import pandas as pd

    evidence = pd.read_parquet(base / "output" / "data" / report["evidence_file"])
    assert evidence["row"].tolist() == list(range(150))
    assert (evidence["champion__proba"] == evidence["challenger__proba"]).all()
    assert evidence["slice__region"].tolist() == holdout["region"].tolist()
    assert evidence["champion__proba"].between(0, 1).all()
