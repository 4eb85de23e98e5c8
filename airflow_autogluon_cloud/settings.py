"""Provider settings: which backend, where the local backend keeps its state, where artifacts go.

Resolution order for each: the operator/hook argument, then the Airflow config section
``[autogluon_cloud]`` (or its ``AIRFLOW__AUTOGLUON_CLOUD__*`` environment variables), then a
default. Switching a DAG from the local backend to SageMaker is therefore configuration only.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_autogluon_cloud.exceptions import InvalidParameterError

CONFIG_SECTION = "autogluon_cloud"
BACKENDS = ("local", "sagemaker")
DEFAULT_BACKEND = "local"


def _config(key: str) -> str | None:
    from airflow.sdk import conf

    value = conf.get(CONFIG_SECTION, key, fallback=None)
    return value or None


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


def resolve_cloud_output_path(cloud_output_path: str | None, backend: str, local_root: Path) -> str:
    """Where artifacts go: the argument, else ``[autogluon_cloud] cloud_output_path``.

    The local backend defaults to ``<local_root>/artifacts``; SageMaker needs an ``s3://`` path.
    """
    path = cloud_output_path or _config("cloud_output_path")
    if path:
        path = path.rstrip("/")
        if backend == "sagemaker" and not path.startswith("s3://"):
            raise InvalidParameterError(
                "cloud_output_path",
                path,
                "the sagemaker backend writes artifacts to S3; give an s3://bucket/prefix location.",
            )
        if not path.startswith("s3://"):
            path = str(Path(path).expanduser().resolve())
        return path
    if backend == "sagemaker":
        raise InvalidParameterError(
            "cloud_output_path",
            None,
            "the sagemaker backend needs an s3://bucket/prefix for artifacts; pass cloud_output_path "
            "or set [autogluon_cloud] cloud_output_path.",
        )
    return str(local_root / "artifacts")
