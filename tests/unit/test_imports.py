"""Parse-time lightness: Airflow imports provider modules constantly, so none may load heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.compat

HEAVY = ("pandas", "numpy", "boto3", "botocore", "sagemaker", "autogluon", "pyarrow")

_PROBE = """
import importlib, pkgutil, sys
import airflow_autogluon_cloud as pkg
failed = []
for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if ".container" in mod.name:
        continue  # entry scripts run in the training/inference process, never at parse time
    importlib.import_module(mod.name)
print("HEAVY:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))))
"""


def test_importing_every_module_loads_nothing_heavy():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY)], capture_output=True, text=True, check=True, cwd=REPO
    )
    # the UI's modules import Airflow's API server, whose warnings may reach stdout: read the marked line
    [loaded] = [line[len("HEAVY:") :] for line in out.stdout.splitlines() if line.startswith("HEAVY:")]
    assert loaded == "", f"importing the package loaded heavy modules: {loaded}"


def test_ruff_bans_heavy_module_level_imports():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    banned = config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"]
    assert set(HEAVY) <= set(banned)


def test_provider_entry_point_and_info():
    from importlib.metadata import entry_points

    from airflow_autogluon_cloud.get_provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-autogluon-cloud"
    for key in ("hooks", "operators", "sensors", "triggers", "extra-links", "connection-types"):
        assert info[key], key
    # every module and class the provider manager would import exists
    import importlib

    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in [*info["extra-links"], *(c["hook-class-name"] for c in info["connection-types"])]:
        module, _, cls = path.rpartition(".")
        assert hasattr(importlib.import_module(module), cls), path
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_autogluon_cloud")]
    assert eps, "the apache_airflow_provider entry point is not installed (pip install -e .)"
    assert eps[0].load()() == info


def _modules_loaded_by(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """In a fresh interpreter, import ``modules`` and list the loaded modules under ``prefixes``."""
    probe = (
        f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m == 'airflow' or m.startswith({prefixes!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_dag_file_importing_the_operators_does_not_load_the_hook_or_triggers():
    # DAG files import operators and sensors; the hook (and through it the backends) and the
    # triggers are imported when a task runs, which keeps parse time down.
    operators = [
        f"airflow_autogluon_cloud.operators.{m}" for m in ("fit", "deploy", "batch_predict", "predict", "cleanup")
    ]
    loaded = _modules_loaded_by(
        [*operators, "airflow_autogluon_cloud.sensors.autogluon_cloud"],
        (
            "airflow_autogluon_cloud.hooks",
            "airflow_autogluon_cloud.triggers.autogluon_cloud",
            "airflow_autogluon_cloud.backends",
        ),
    )
    assert [m for m in loaded if m != "airflow"] == []


def test_sensors_back_off_in_poke_and_reschedule_mode():
    from datetime import timedelta

    from airflow_autogluon_cloud.sensors.autogluon_cloud import AGFitJobSensor

    sensor = AGFitJobSensor(task_id="s", job_name="j", mode="reschedule", deferrable=False)
    assert sensor.exponential_backoff is True
    assert sensor.max_wait == timedelta(seconds=120)
    custom = AGFitJobSensor(task_id="s2", job_name="j", poke_interval=10, exponential_backoff=False)
    assert custom.exponential_backoff is False
    assert custom.max_wait == timedelta(seconds=40)
    as_timedelta = AGFitJobSensor(task_id="s3", job_name="j", poke_interval=timedelta(seconds=15))
    assert as_timedelta.max_wait == timedelta(seconds=60)


def test_local_job_runner_and_batch_workers_start_without_airflow():
    # Runners and batch workers are separate processes; importing Airflow would add about 1.4 s to
    # every job start and every worker (the workers re-import the runner as their __main__).
    local = "airflow_autogluon_cloud.backends.local"
    loaded = _modules_loaded_by([f"{local}.runner", f"{local}.transform", f"{local}.batch_worker"], ("airflow.",))
    assert loaded == []


def test_the_ui_plugin_loads_neither_fastapi_app_nor_hook_at_start():
    """Airflow imports the plugin in every component; the page's app is built on its first request."""
    probe = (
        "import sys, airflow_autogluon_cloud.ui.plugin as p; "
        "print('LOADED:' + ','.join(m for m in ('airflow_autogluon_cloud.ui.app', "
        "'airflow_autogluon_cloud.hooks.autogluon_cloud', 'airflow.api_fastapi.core_api.security') if m in sys.modules)); "
        "print('APPS:' + ','.join(a['url_prefix'] for a in p.AutoGluonCloudPlugin.fastapi_apps))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in out.stdout.splitlines() if ":" in line}
    assert lines["LOADED"] == ""
    assert lines["APPS"] == "/autogluon"


def test_operators_load_no_openlineage_at_parse():
    """With the OpenLineage provider installed, importing the operators loads none of OpenLineage's
    client, its extractors or the provider's facet builders: those load inside
    ``get_openlineage_facets_on_complete``. (The wheel's smoke test runs without the provider.)"""
    probe = (
        "import sys\n"
        "import airflow_autogluon_cloud.operators.fit, airflow_autogluon_cloud.operators.evaluate\n"
        "import airflow_autogluon_cloud.operators.registry, airflow_autogluon_cloud.operators.deploy\n"
        "import airflow_autogluon_cloud.operators.batch_predict, airflow_autogluon_cloud.operators.cleanup\n"
        "watched = ('openlineage', 'airflow.providers.openlineage.extractors', 'airflow_autogluon_cloud.lineage.facets')\n"
        "print('LOADED:' + ','.join(sorted(m for m in sys.modules if m.startswith(watched))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    [loaded] = [line[len("LOADED:") :] for line in out.stdout.splitlines() if line.startswith("LOADED:")]
    assert loaded == ""
