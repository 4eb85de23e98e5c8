"""Provider settings: which backend, where the local backend keeps its state, where artifacts go.

Resolution order for each: the operator/hook argument, then the Airflow config section
``[autogluon_cloud]`` (or its ``AIRFLOW__AUTOGLUON_CLOUD__*`` environment variables), then a
default. Switching a DAG from the local backend to SageMaker is therefore configuration only.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError

CONFIG_SECTION = "autogluon_cloud"
BACKENDS = ("local", "sagemaker")
DEFAULT_BACKEND = "local"


def airflow_conf() -> Any:
    """Airflow's configuration: ``airflow.sdk.conf`` (3.2+), else ``airflow.configuration.conf`` (3.1)."""
    try:
        from airflow.sdk import conf as sdk_conf
    except ImportError:
        from airflow.configuration import conf as core_conf

        return core_conf
    return sdk_conf


def dag_bag_class() -> Any:
    """Airflow's ``DagBag``: ``airflow.dag_processing.dagbag`` (3.3+), else ``airflow.models.dagbag`` (3.1, 3.2)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DagBag


def load_dag_bag(dag_folder: str | os.PathLike[str]) -> Any:
    """The DAGs in ``dag_folder`` as a ``DagBag``, for scripts and tests that run a DAG with ``dag.test()``."""
    return dag_bag_class()(dag_folder=str(dag_folder))


def _config(key: str) -> str | None:
    value = airflow_conf().get(CONFIG_SECTION, key, fallback=None)
    return value or None


def resolve_local_python(key: str) -> str:
    """The interpreter the local backend runs a kind's entry scripts with: ``[autogluon_cloud] <key>``
    (the kind gives the key, e.g. ``local_python_timeseries``), else this one.

    :raises InvalidParameterError: the setting names no executable file (checked before any job).
    """
    import sys

    value = _config(key)
    if value is None:
        return sys.executable
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise InvalidParameterError(
            key,
            value,
            f"set [autogluon_cloud] {key} (or AIRFLOW__AUTOGLUON_CLOUD__{key.upper()}) to an existing, executable "
            "Python interpreter with AutoGluon installed, e.g. /opt/ts-env/bin/python, or remove it to use Airflow's.",
        )
    return str(path)


def default_deferrable() -> bool:
    """``[operators] default_deferrable``: whether tasks wait in the triggerer unless told otherwise."""
    return bool(airflow_conf().getboolean("operators", "default_deferrable", fallback=False))


def resolve_backend(backend: str | None) -> str:
    """The backend name to use: the argument, else ``[autogluon_cloud] backend``, else ``local``."""
    name = (backend or _config("backend") or DEFAULT_BACKEND).strip().lower()
    if name not in BACKENDS:
        raise InvalidParameterError(
            "backend", name, f"choose one of {', '.join(BACKENDS)} (or set [autogluon_cloud] backend)."
        )
    return name


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()


def resolve_local_root(local_root: str | None = None) -> Path:
    """Root directory of the local backend's state, job directories and default artifacts."""
    root = local_root or _config("local_root") or str(airflow_home() / "autogluon_cloud")
    return Path(root).expanduser().resolve()


def resolve_cloud_output_path(cloud_output_path: str | None, *, requires_s3: bool, local_root: Path) -> str:
    """Where artifacts go: the argument, else ``[autogluon_cloud] cloud_output_path``.

    :param requires_s3: the backend reads and writes artifacts on S3 only (SageMaker); otherwise
        the default is ``<local_root>/artifacts``.
    """
    path = cloud_output_path or _config("cloud_output_path")
    if path:
        path = path.rstrip("/")
        if requires_s3 and not path.startswith("s3://"):
            raise InvalidParameterError(
                "cloud_output_path",
                path,
                "the sagemaker backend writes artifacts to S3; give an s3://bucket/prefix location.",
            )
        if not path.startswith("s3://"):
            path = str(Path(path).expanduser().resolve())
        return path
    if requires_s3:
        raise InvalidParameterError(
            "cloud_output_path",
            None,
            "the sagemaker backend needs an s3://bucket/prefix for artifacts; pass cloud_output_path "
            "or set [autogluon_cloud] cloud_output_path.",
        )
    return str(local_root / "artifacts")


class ProviderSettings:
    """The resolved settings a hook and its services work with.

    :param backend: the backend name (already resolved).
    :param local_root: the local backend's state directory (already resolved).
    :param cloud_output_path: the argument as given; resolved (and validated) on first use, so
        that describing a job needs no artifact location.
    :param requires_s3: whether the backend needs ``s3://`` artifact locations.
    """

    def __init__(self, backend: str, local_root: Path, cloud_output_path: str | None, *, requires_s3: bool) -> None:
        self.backend = backend
        self.local_root = local_root
        self.cloud_output_path_arg = cloud_output_path
        self.requires_s3 = requires_s3

    @cached_property
    def instance_prices(self) -> dict[str, float]:
        """``[autogluon_cloud] instance_prices``: instance type -> USD per hour, as JSON (none bundled:
        prices change and differ by region; give yours). With it, job XComs carry an estimated cost."""
        raw = _config("instance_prices")
        try:
            prices = json.loads(raw) if raw else {}
        except ValueError:
            prices = None
        if not isinstance(prices, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in prices.values()
        ):
            raise InvalidParameterError(
                "[autogluon_cloud] instance_prices", raw, 'give a JSON object such as {"ml.m5.2xlarge": 0.461}.'
            )
        return {str(k): float(v) for k, v in prices.items()}

    @cached_property
    def cloud_output_path(self) -> str:
        return resolve_cloud_output_path(
            self.cloud_output_path_arg, requires_s3=self.requires_s3, local_root=self.local_root
        )
