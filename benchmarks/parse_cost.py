"""1. DAG-parse cost: what importing the operators and sensors adds to a DAG file's parse.

Each sample is a fresh interpreter that has already imported ``airflow.sdk`` (every Airflow 3
DAG file does); the figure is the added wall time of the provider imports, and the heavy
modules they pulled in.
"""

from __future__ import annotations

import json
from typing import Any

from common import median, python_in_fresh_interpreter

HEAVY = ("pandas", "numpy", "boto3", "botocore", "sagemaker", "autogluon", "pyarrow", "sklearn", "torch")

CANDIDATES = {
    "airflow_autogluon_cloud (all operators and sensors)": [
        "airflow_autogluon_cloud.operators.fit",
        "airflow_autogluon_cloud.operators.deploy",
        "airflow_autogluon_cloud.operators.batch_predict",
        "airflow_autogluon_cloud.operators.predict",
        "airflow_autogluon_cloud.operators.cleanup",
        "airflow_autogluon_cloud.sensors.autogluon_cloud",
    ],
    "Amazon provider SageMaker operators": ["airflow.providers.amazon.aws.operators.sagemaker"],
    "Amazon provider SageMaker operators and sensors": [
        "airflow.providers.amazon.aws.operators.sagemaker",
        "airflow.providers.amazon.aws.sensors.sagemaker",
    ],
}

_PROBE = """
import importlib, json, sys, time
import airflow.sdk
before = set(sys.modules)
start = time.perf_counter()
for name in {modules!r}:
    importlib.import_module(name)
elapsed = time.perf_counter() - start
added = set(sys.modules) - before
heavy = sorted({{m.split(".")[0] for m in added}} & set({heavy!r}))
print(json.dumps({{"seconds": elapsed, "heavy": heavy, "modules_added": len(added)}}))
"""


def measure(modules: list[str], repeats: int) -> dict[str, Any]:
    samples = []
    for _ in range(repeats):
        out = python_in_fresh_interpreter(_PROBE.format(modules=modules, heavy=HEAVY))
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "modules": modules,
        "added_ms_median": round(median([s["seconds"] for s in samples]) * 1000, 1),
        "added_ms_samples": [round(s["seconds"] * 1000, 1) for s in samples],
        "heavy_modules_loaded": samples[-1]["heavy"],
        "modules_added": samples[-1]["modules_added"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 3 if quick else 9
    rows = {label: measure(modules, repeats) for label, modules in CANDIDATES.items()}
    ours = rows["airflow_autogluon_cloud (all operators and sensors)"]
    theirs = rows["Amazon provider SageMaker operators"]
    return {
        "repeats": repeats,
        "rows": rows,
        "ratio_ours_to_amazon_operators": round(ours["added_ms_median"] / theirs["added_ms_median"], 3),
        "target": "under 50 ms added; none of pandas, numpy, boto3, sagemaker, autogluon loaded",
        "target_met": ours["added_ms_median"] < 50
        and not set(ours["heavy_modules_loaded"]) & {"pandas", "numpy", "boto3", "sagemaker", "autogluon"},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
