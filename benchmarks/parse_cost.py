"""1. DAG-parse cost: what importing the operators and sensors adds to a DAG file's parse.

Each sample is a fresh interpreter that has already imported ``airflow.sdk`` (every Airflow 3
DAG file does); the figure is the added wall time of the provider imports, and the heavy
modules they pulled in (any sample's). The candidates are sampled in turn, the order rotated each
repeat; each figure is the median over the repeats with its min-max.
"""

from __future__ import annotations

import json
from typing import Any

from common import python_in_fresh_interpreter, spread

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
    # what every Airflow component imports at start when it loads plugins (the page's app is built later)
    "airflow_autogluon_cloud UI plugin": ["airflow_autogluon_cloud.ui.plugin"],
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


def sample(modules: list[str]) -> dict[str, Any]:
    out = python_in_fresh_interpreter(_PROBE.format(modules=modules, heavy=HEAVY))
    return json.loads(out.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 3 if quick else 9
    labels = list(CANDIDATES)
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for r in range(repeats):  # interleaved, the order rotated each repeat
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            samples[label].append(sample(CANDIDATES[label]))
    rows = {}
    for label, got in samples.items():
        ms = [s["seconds"] * 1000 for s in got]
        med, low, high = spread(ms, 1)
        rows[label] = {
            "modules": CANDIDATES[label],
            "added_ms_median": med,
            "added_ms_range": [low, high],
            "added_ms_samples": [round(v, 1) for v in ms],
            "heavy_modules_loaded": sorted({m for s in got for m in s["heavy"]}),
            "modules_added": got[-1]["modules_added"],
        }
    ours = "airflow_autogluon_cloud (all operators and sensors)"
    theirs = "Amazon provider SageMaker operators"
    per_repeat = [a["seconds"] / b["seconds"] for a, b in zip(samples[ours], samples[theirs], strict=True)]
    med, low, high = spread(per_repeat, 3)
    return {
        "repeats": repeats,
        "rows": rows,
        "ratio_ours_to_amazon_operators": med,
        "ratio_ours_to_amazon_operators_range": [low, high],
        "target": "under 50 ms added; none of pandas, numpy, boto3, sagemaker, autogluon loaded",
        "target_met": rows[ours]["added_ms_median"] < 50
        and not set(rows[ours]["heavy_modules_loaded"]) & {"pandas", "numpy", "boto3", "sagemaker", "autogluon"},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
