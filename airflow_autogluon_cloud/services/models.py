"""Models: check an artifact, read its training summary once, register it with a backend, load it here.

A ``model.tar.gz`` made by this provider has ``training_summary.json`` (AutoGluon version,
features, label, classes) in the ``output.tar.gz`` beside it, and in the archive itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.base import PROVIDER_TAG, Backend, ModelSpec
from airflow_autogluon_cloud.exceptions import ArtifactError, InvalidParameterError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import ModelSummary
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.roles import ExecutionRole
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.storage import StorageLocator


@dataclass
class ModelService:
    """Model artifacts and the backend's model resources.

    :param backend: where models are registered.
    :param storage: the storage for any URI.
    :param settings: the local root (for :meth:`to_local_predictor`).
    :param execution_role: the role models run as, on backends that use one.
    :param log: the task log.
    """

    backend: Backend
    storage: StorageLocator
    settings: ProviderSettings
    execution_role: ExecutionRole
    log: TaskLog

    def check_uri(self, model_uri: Any, parameter: str = "model_uri") -> str:
        """Validate a ``model.tar.gz`` location before anything is created."""
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise InvalidParameterError(
                parameter, model_uri, "pass the fit task's model_artifact_uri or a model.tar.gz location."
            )
        if self.backend.requires_s3_uris and not model_uri.startswith("s3://"):
            raise InvalidParameterError(
                parameter, model_uri, "SageMaker loads models from S3; give an s3://.../model.tar.gz URI."
            )
        if not model_uri.endswith(".tar.gz"):
            raise InvalidParameterError(parameter, model_uri, "expected a model.tar.gz artifact.")
        if not self.storage(model_uri).exists(model_uri):
            raise InvalidParameterError(parameter, model_uri, "no model artifact exists at that location.")
        return model_uri

    def summary(self, model_uri: str) -> dict[str, Any]:
        """``training_summary.json`` of the job that produced ``model_uri`` ({} if unknown)."""
        from airflow_autogluon_cloud.archives import safe_extract

        sibling = model_uri.rsplit("/", 1)[0] + "/output.tar.gz"
        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.storage(sibling).download_file(sibling, Path(tmp) / "output.tar.gz")
                out = safe_extract(Path(tmp) / "output.tar.gz", Path(tmp) / "out")
            except Exception:
                return {}
            path = out / "training_summary.json"
            return json.loads(path.read_text()) if path.is_file() else {}

    def baseline(self, model_uri: str) -> dict[str, Any] | None:
        """The model's data baseline: ``{"statistics": ..., "constraints": ...}`` (SageMaker Model
        Monitor's ``statistics.json`` and ``constraints.json``, written by the training job beside its
        summary; the statistics also hold the model's answers under ``predictions``). ``None`` for a
        model trained before baselines existed."""
        from airflow_autogluon_cloud.archives import safe_extract

        self.check_uri(model_uri)
        names = {"statistics": "statistics.json", "constraints": "constraints.json"}
        # The job's output.tar.gz holds the same files as model.tar.gz, without the models: read it first.
        for archive in (model_uri.rsplit("/", 1)[0] + "/output.tar.gz", model_uri):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    self.storage(archive).download_file(archive, Path(tmp) / "archive.tar.gz")
                    out = safe_extract(Path(tmp) / "archive.tar.gz", Path(tmp) / "out", source=archive)
                except Exception:
                    continue
                if (out / names["statistics"]).is_file():
                    return {
                        key: json.loads((out / name).read_text()) if (out / name).is_file() else None
                        for key, name in names.items()
                    }
        return None

    def read_summary(self, model_uri: str) -> ModelSummary:
        """The typed :meth:`summary` (its defaults where the file is missing or silent)."""
        return ModelSummary.from_dict(self.summary(model_uri))

    def create(
        self,
        model_name: str,
        model_uri: str,
        *,
        instance_type: str = "ml.m5.2xlarge",
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        tags: dict[str, str] | None = None,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Register a deployable model unless one with that name exists; return whether it was created.

        :param summary: the model's training summary when the caller already read it, so it is read
            once (the image follows its AutoGluon version unless one is given).
        """
        try:
            existing = self.backend.describe_model(model_name)
        except ResourceNotFoundError:
            existing = None
        if existing is not None:
            if existing.model_data_uri != model_uri:
                raise InvalidParameterError(
                    "model_name", model_name, f"a model with that name already serves {existing.model_data_uri}."
                )
            return False
        summary = summary if summary is not None else self.summary(model_uri)
        interpreter = ModelSummary.from_dict(summary).kind.local_python()
        version = framework_version
        if version is None and custom_image_uri is None:
            version = summary.get("autogluon_version")
        image = self.backend.resolve_image(
            "inference", framework_version=version, custom_image_uri=custom_image_uri, instance_type=instance_type
        )
        self.backend.create_model(
            ModelSpec(
                name=model_name,
                model_data_uri=model_uri,
                image_uri=image.image_uri,
                role_arn=self.execution_role(),
                tags={PROVIDER_TAG: "model", **(tags or {})},
                interpreter=interpreter,
            )
        )
        return True

    def to_local_predictor(
        self, model_uri: str, save_path: str | os.PathLike[str] | None = None, *, require_version_match: bool = True
    ) -> Any:
        """Download ``model.tar.gz``, extract it safely and load it as its kind's AutoGluon predictor.

        :param require_version_match: refuse a model trained with another AutoGluon version (loading
            across versions can silently misbehave); pass False to load anyway.
        """
        from airflow_autogluon_cloud.archives import safe_extract
        from airflow_autogluon_cloud.images import installed_autogluon_version

        self.check_uri(model_uri)
        target = (
            Path(save_path)
            if save_path
            else self.settings.local_root / "predictors" / naming.short_hash(model_uri, length=16)
        )
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                archive = Path(tmp) / "model.tar.gz"
                self.storage(model_uri).download_file(model_uri, archive)
                safe_extract(archive, target, source=model_uri)
        except BaseException:
            if created:  # a refused or missing model leaves no empty save_path behind
                shutil.rmtree(target, ignore_errors=True)
            raise
        summary_path = target / "training_summary.json"
        summary = ModelSummary.from_dict(json.loads(summary_path.read_text()) if summary_path.is_file() else {})
        version_file = target / "version.txt"
        trained_with = version_file.read_text().strip() if version_file.is_file() else summary.autogluon_version
        installed = installed_autogluon_version()
        if require_version_match and trained_with and trained_with != installed:
            raise ArtifactError(
                f"{model_uri} was trained with AutoGluon {trained_with}, but AutoGluon {installed} is installed. "
                "Install the matching version, or pass require_version_match=False to load it anyway."
            )
        return summary.kind.load_predictor(str(target), require_version_match=require_version_match)
