"""Which class implements each backend name, and how a backend is built from the provider's settings.

The one place that maps a configured name (``[autogluon_cloud] backend``) to code; backend
modules are imported only when that backend is used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_autogluon_cloud.settings import BACKENDS

if TYPE_CHECKING:
    from airflow_autogluon_cloud.aws import AwsSettings
    from airflow_autogluon_cloud.backends.base import Backend

_CLASSES = {
    "local": "airflow_autogluon_cloud.backends.local.backend:LocalBackend",
    "sagemaker": "airflow_autogluon_cloud.backends.sagemaker:SageMakerBackend",
}
assert set(_CLASSES) == set(BACKENDS), "every configurable backend name needs a class"


def backend_class(name: str) -> type[Backend]:
    module, _, cls = _CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def create_backend(name: str, *, aws: AwsSettings, local_root: Path) -> Backend:
    """The backend called ``name``, using the AWS connection ``aws`` and the local state root."""
    return backend_class(name).from_settings(aws=aws, local_root=local_root)
