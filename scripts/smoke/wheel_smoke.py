"""Smoke test of an environment that has only the built wheel and what pip resolved for it.

Run by ``scripts/smoke-wheel.sh`` with that environment's interpreter: the provider is registered
with Airflow (connection type, extra links), the operators import without heavy libraries, and a
short local fit runs through ``dag.test()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

PACKAGE = "airflow-provider-autogluon-cloud"
HEAVY = ("pandas", "numpy", "boto3", "botocore", "autogluon", "sagemaker", "pyarrow")
OPERATORS = [f"airflow_autogluon_cloud.operators.{m}" for m in ("fit", "deploy", "batch_predict", "predict", "cleanup")]


def airflow_json(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "airflow", *args, "-o", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout[out.stdout.index("[") :])


def check_provider_registered() -> None:
    providers = {p["package_name"]: p for p in airflow_json("providers", "list")}
    if PACKAGE not in providers:
        raise SystemExit(f"airflow providers list does not show {PACKAGE}: {sorted(providers)}")
    hooks = airflow_json("providers", "hooks")
    if not any(h.get("connection_type") == "autogluon_cloud" for h in hooks):
        raise SystemExit("airflow providers hooks does not show the autogluon_cloud connection type")
    links = {link["extra_link_class_name"] for link in airflow_json("providers", "links")}
    ours = {link for link in links if link.startswith("airflow_autogluon_cloud.")}
    if len(ours) != 3:
        raise SystemExit(f"expected the provider's three extra links, got {sorted(ours)}")
    print(f"   provider {providers[PACKAGE]['version']}: connection type autogluon_cloud, links {sorted(ours)}")


def check_operators_import_light() -> None:
    probe = (
        f"import importlib, sys\nfor m in {OPERATORS!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    if loaded:
        raise SystemExit(f"importing the operators loaded {loaded}")
    print("   operators import without " + ", ".join(HEAVY))


def check_short_local_fit() -> None:
    from airflow_autogluon_cloud.example_data import make_churn
    from airflow_autogluon_cloud.settings import load_dag_bag

    train = Path(os.environ["AGC_SMOKE_TRAIN_DATA"])
    make_churn(300, seed=3).to_csv(train, index=False)
    bag = load_dag_bag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    started = time.monotonic()
    run = bag.get_dag("agc_wheel_smoke").test()
    if str(run.state) != "success":
        raise SystemExit(f"the smoke fit DAG ended {run.state}")
    print(f"   local fit through dag.test(): {run.state} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    check_provider_registered()
    check_operators_import_light()
    check_short_local_fit()
