"""OpenLineage for the operators: what each task read and wrote, named per OpenLineage's rules.

This module imports nothing from OpenLineage: the operators' ``get_openlineage_facets_on_complete``
import :mod:`.facets` inside the method, so without the OpenLineage provider nothing is loaded and
a DAG's parse cost does not change.

Naming (OpenLineage's dataset naming): ``s3://bucket/key`` is namespace ``s3://bucket``, name
``key``; a local path is namespace ``file``, name the absolute path. A registry version is
namespace ``autogluon-registry`` (local) or its model package ARN's ``arn:aws:sagemaker:<region>:
<account>``, name ``<group>/<version>``; an endpoint is namespace ``autogluon-endpoint:<backend>``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

#: The JSON schema of the model run facet, shipped beside this module.
MODEL_FACET_SCHEMA_FILE = "AutoGluonModelRunFacet.json"
MODEL_FACET_NAME = "autogluonModel"


def storage_dataset(uri: Any) -> tuple[str, str] | None:
    """``(namespace, name)`` of an S3 URI or a local path (``None`` for anything else, e.g. a DataFrame)."""
    if not isinstance(uri, str) or not uri.strip():
        return None
    uri = uri.split("#", 1)[0]
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        return f"s3://{parts.netloc}", parts.path.lstrip("/") or "/"
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        return ("file" if not parts.netloc else f"file://{parts.netloc}"), parts.path
    path = os.path.expanduser(uri)
    if "://" in uri or not os.path.isabs(path):
        return None  # not a location (e.g. "evaluation job x" in a registry's dataset field)
    return "file", os.path.normpath(path)


def registry_dataset(version: dict[str, Any]) -> tuple[str, str] | None:
    """``(namespace, name)`` of a registry version (the register or batch task's ``model_version``)."""
    group, number = version.get("group"), version.get("version")
    if not group or number is None:
        return None
    arn = str(version.get("arn") or "")
    namespace = ":".join(arn.split(":")[:5]) if arn.startswith("arn:") else "autogluon-registry"
    return namespace, f"{group}/{number}"


def endpoint_dataset(name: Any, backend: Any) -> tuple[str, str] | None:
    if not isinstance(name, str) or not name:
        return None
    return f"autogluon-endpoint:{backend or 'unknown'}", name
