"""Batch prediction: a transform job scoring a dataset with a model, and reading its results.

The model created for a transform job exists only for that job and is removed afterwards. The
output is JSON lines: the prediction named after the label, then ``<class>_proba`` columns.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming, predict_options
from airflow_autogluon_cloud.backends.base import PROVIDER_TAG, Backend, TransformJobSpec
from airflow_autogluon_cloud.exceptions import InvalidParameterError, JobFailedError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.jobs import JobService, JobSubmission
from airflow_autogluon_cloud.services.models import ModelService
from airflow_autogluon_cloud.services.realtime import split_proba
from airflow_autogluon_cloud.services.staging import StagingService
from airflow_autogluon_cloud.services.training import TrainingService
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import StorageLocator, join_uri

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class BatchService:
    """Transform jobs on one backend.

    :param backend: where jobs run.
    :param jobs: job control (finding an earlier try's job).
    :param models: checks the artifact, reads its summary, registers the job's model.
    :param staging: stages the scoring input.
    :param storage: the storage for any URI (reading results).
    :param settings: where artifacts go, and the local root for downloads.
    :param log: the task log.
    """

    backend: Backend
    jobs: JobService
    models: ModelService
    staging: StagingService
    storage: StorageLocator
    settings: ProviderSettings
    log: TaskLog
    #: reads the predictions of a training job that scored data too (train and score in one job).
    training: TrainingService | None = None

    def start(
        self,
        *,
        job_name: str,
        model_uri: str,
        test_data: Any,
        instance_type: str = "ml.m5.2xlarge",
        instance_count: int = 1,
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        max_runtime: int = 24 * 3600,
        tags: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        predict_kwargs: dict[str, Any] | None = None,
    ) -> JobSubmission:
        """Start a batch transform of ``test_data`` with ``model_uri`` (or reattach to an earlier try's).

        :param predict_kwargs: prediction options (:mod:`~airflow_autogluon_cloud.predict_options`),
            checked against the model's summary before anything starts; they reach the serving
            script in the job's environment.
        """
        if not naming.is_valid_name(job_name):
            raise InvalidParameterError("job_name", job_name, "use 1-63 letters, digits and hyphens.")
        if not isinstance(instance_count, int) or instance_count < 1:
            raise InvalidParameterError("instance_count", instance_count, "expected an integer >= 1.")
        predict_options.validate(predict_kwargs)  # the options' shape; against the model once its summary is read
        self.settings.cloud_output_path  # noqa: B018 - validates the output location before anything else
        self.models.check_uri(model_uri)
        summary = self.models.summary(model_uri)  # read once: the features here, the version for the image
        features = summary.get("features") or []
        options = predict_options.validate(predict_kwargs, summary)
        environment = dict(environment or {})
        if options:
            environment[predict_options.ENV_VAR] = predict_options.to_json(options)
        prepared = self.staging.prepare_data(test_data, "test_data", features)
        try:
            found = self.jobs.find(JobKind.TRANSFORM, job_name)
            if isinstance(found, JobSubmission):
                return found
            name = found
            staged = self.staging.stage_scoring_input(prepared, features)
        finally:
            prepared.cleanup()
        model_name = naming.derived_name(name, "model")
        self.models.create(
            model_name,
            model_uri,
            instance_type=instance_type,
            framework_version=framework_version,
            custom_image_uri=custom_image_uri,
            tags=tags,
            summary=summary,
        )
        spec = TransformJobSpec(
            name=name,
            model_name=model_name,
            input_uri=staged.uri,
            output_path=join_uri(self.settings.cloud_output_path, "batch_transform", name),
            instance_type=instance_type,
            instance_count=instance_count,
            content_type="text/csv",
            accept="application/jsonl",
            max_runtime=max_runtime,
            environment=environment,
            tags={PROVIDER_TAG: "transform", **(tags or {})},
        )
        self.log.info("Creating transform job %s on the %s backend (input %s)", name, self.backend.name, staged.uri)
        try:
            self.backend.create_transform_job(spec)
        except Exception:
            self.backend.delete_model(model_name)
            raise
        return JobSubmission(name, JobStatus.IN_PROGRESS, reattached=False)

    def result(self, job_name: str) -> dict[str, Any]:
        """The small XCom dict for a transform job: output URI, input, status."""
        desc = self.jobs.describe(JobKind.TRANSFORM, job_name)
        output_uri = None
        if desc.status == JobStatus.COMPLETED and desc.artifact_uri:
            source = desc.secondary_uri or ""
            output_uri = join_uri(desc.artifact_uri, source.rsplit("/", 1)[-1] + ".out")
        return {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend.name,
            "input_uri": desc.secondary_uri,
            "output_uri": output_uri,
            "model_name": desc.model_name,
        }

    def cleanup_model(self, job_name: str) -> None:
        """Remove the model a transform job was created with (it exists only for that job)."""
        desc = self.jobs.describe(JobKind.TRANSFORM, job_name)
        if desc.model_name and desc.model_name.startswith(job_name[:40]):
            self.backend.delete_model(desc.model_name)

    def read_results(self, job_name: str) -> pd.DataFrame:
        """A transform job's output as a DataFrame: the prediction column, then ``<class>_proba`` columns.

        ``job_name`` may also name a training job that scored ``predict_data``: its predictions
        have the same format and are read the same way.
        """
        import pandas as pd

        try:
            result = self.result(job_name)
        except ResourceNotFoundError:
            if self.training is None:
                raise
            try:
                return pd.read_json(io.BytesIO(self.training.read_predictions(job_name)), lines=True)
            except ResourceNotFoundError:
                raise ResourceNotFoundError(
                    "Transform or training job", job_name, self.backend.name, "no job of either kind has this name."
                ) from None
        if not result["output_uri"]:
            raise JobFailedError("Transform job", job_name, result["status"], "it has no results (not Completed)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.jsonl"
            self.storage(result["output_uri"]).download_file(result["output_uri"], path)
            return pd.read_json(path, lines=True)

    def download_results(
        self,
        job_name: str,
        save_path: str | os.PathLike[str] | None = None,
        *,
        predict_proba: bool = False,
        include_predict: bool = True,
    ) -> str:
        """Save a transform job's results as CSV (written atomically) and return the file's path.

        :param save_path: a file or directory; default ``<local_root>/batch_results/<job_name>/``.
        :param predict_proba: save class probabilities (one column per class).
        :param include_predict: with ``predict_proba``, keep the prediction column too.
        """
        frame = self.read_results(job_name)
        if predict_proba:
            proba = split_proba(frame)
            if include_predict and hasattr(proba, "columns"):
                proba.insert(0, frame.columns[0], frame.iloc[:, 0])
            frame = proba.to_frame() if not hasattr(proba, "columns") else proba
        else:
            frame = frame.iloc[:, [0]]
        target = Path(save_path) if save_path else self.settings.local_root / "batch_results" / job_name
        if target.suffix != ".csv":
            target = target / "predictions.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
        return str(target)
