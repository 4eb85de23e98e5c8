"""OpenLineage from the operators, with the OpenLineage provider's listener and a file transport:
the main DAG under ``dag.test()`` emits the chain training data -> model -> registry version ->
scores. The run is a subprocess: Airflow loads the provider's listener with its plugins, once per
process, and only when a transport is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
GROUP = "ol-churn"
RUN = """
import os
from airflow_autogluon_cloud.settings import load_dag_bag
bag = load_dag_bag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("ag_retrain_and_score").test()
print("DAG_RUN_STATE=" + str(run.state))
"""


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lineage_events(airflow_db, tmp_path_factory) -> list[dict[str, Any]]:
    events = tmp_path_factory.mktemp("openlineage") / "events.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "agc-tests",
        "AG_EXAMPLE_REGISTRY_GROUP": GROUP,
        "AG_EXAMPLE_TIME_LIMIT": "10",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    out = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=1200, cwd=airflow_db
    )
    assert "DAG_RUN_STATE=success" in out.stdout, (out.stdout[-3000:], out.stderr[-3000:])
    return _events(events)


def _complete(events: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    done = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(f".{task_id}")]
    assert done, sorted({e["job"]["name"] for e in events})
    return done[-1]


def _names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_the_main_dag_emits_train_data_model_registry_version_scores(lineage_events):
    fit = _complete(lineage_events, "fit")
    [train] = [d for d in fit["inputs"] if d["name"].endswith("/train.csv")]
    assert train["namespace"] == "file"
    assert Path(train["name"]).is_absolute()
    [model] = fit["outputs"]
    assert model["name"].endswith("/output/model.tar.gz")
    model_facet = fit["run"]["facets"]["autogluonModel"]
    assert model_facet["predictorType"] == "tabular"
    assert model_facet["autogluonVersion"]
    assert model_facet["_schemaURL"].endswith("AutoGluonModelRunFacet.json#/$defs/AutoGluonModelRunFacet")

    evaluate = _complete(lineage_events, "evaluate")
    [holdout] = [d for d in evaluate["inputs"] if d["name"].endswith("/holdout.csv")]
    quality = holdout["inputFacets"]
    assert quality["dataQualityMetrics"]["rowCount"] > 0
    assert any(a["name"] == "roc_auc" for a in quality["dataQualityAssertions"]["assertions"])
    assert (model["namespace"], model["name"]) in _names(evaluate["inputs"])

    register = _complete(lineage_events, "register")
    assert (model["namespace"], model["name"]) in _names(register["inputs"])
    [version] = register["outputs"]
    assert version["namespace"] == "autogluon-registry"
    assert version["name"].startswith(f"{GROUP}/")
    registered = register["run"]["facets"]["autogluonModel"]
    assert registered["group"] == GROUP
    assert f"{GROUP}/{registered['version']}" == version["name"]
    assert "roc_auc" in registered["metrics"]

    gate = _complete(lineage_events, "gate")
    assert (version["namespace"], version["name"]) in _names(gate["inputs"])
    assert gate["run"]["facets"]["autogluonModel"]["approvalStatus"] in ("Approved", "Rejected")

    score = _complete(lineage_events, "batch_score")
    used = score["run"]["facets"]["autogluonModel"]
    assert used["approvalStatus"] == "Approved"
    assert ("autogluon-registry", f"{GROUP}/{used['version']}") in _names(score["inputs"])
    [scored] = [d for d in score["inputs"] if d["name"].endswith("/score.csv")]
    # the batch's data checks (data_checks="warn") as the standard data-quality facets
    from airflow_autogluon_cloud.lineage.facets import BATCH_CHECKS

    metrics = scored["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] > 0
    assert metrics["columnMetrics"], "statistics.json's per-column metrics"
    for column in metrics["columnMetrics"].values():
        assert 0 < column["count"] <= metrics["rowCount"]
        assert 0 <= column["nullCount"] <= column["count"]
    assertions = scored["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"] for a in assertions} == set(BATCH_CHECKS)  # each check: passed, or failed per column
    assert all(a["column"] in metrics["columnMetrics"] for a in assertions if not a["success"])
    assert all("column" not in a or a["column"] is None for a in assertions if a["success"])
    [scores] = score["outputs"]
    assert scores["namespace"] == "file"
    # the first run of a new group approves its challenger: the scores come from the version registered
    assert used["version"] == registered["version"]
