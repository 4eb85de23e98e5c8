"""Batch prediction: a transform job scoring a dataset with a model, and reading its results.

The model created for a transform job exists only for that job and is removed afterwards. The
model's kind decides the request: rows (JSON lines out: the prediction named after the label,
then ``<class>_proba`` columns), or whole series partitioned by item into JSON envelopes, one
request per file (CSV out: ``item_id``, ``timestamp``, ``mean`` and one column per quantile), or a
folder of files each sent as one request (images: ``<file>.out`` per file, read back as one table
with an ``input_file`` column).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming, predict_options
from airflow_autogluon_cloud.backends.base import PROVIDER_TAG, Backend, TransformJobSpec
from airflow_autogluon_cloud.datasets import is_dataframe
from airflow_autogluon_cloud.exceptions import InvalidParameterError, JobFailedError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import SERIES, JobKind, ModelSummary, PredictorKind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.cost import usage as job_usage
from airflow_autogluon_cloud.services.jobs import JobService, JobSubmission
from airflow_autogluon_cloud.services.models import ModelService
from airflow_autogluon_cloud.services.monitoring import PROFILE_ENV, MonitoringService
from airflow_autogluon_cloud.services.realtime import split_proba
from airflow_autogluon_cloud.services.staging import StagedObject, StagingService
from airflow_autogluon_cloud.services.training import TrainingService
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import StorageLocator, is_s3_uri, join_uri, relative_key

if TYPE_CHECKING:
    import pandas as pd

#: The column naming each answer's input file when a folder was scored one request per file.
INPUT_FILE_COLUMN = "input_file"


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
        known_covariates: Any = None,
        static_features: Any = None,
        data_checks: bool = True,
    ) -> JobSubmission:
        """Start a batch transform of ``test_data`` with ``model_uri`` (or reattach to an earlier try's).

        :param predict_kwargs: prediction options (:mod:`~airflow_autogluon_cloud.predict_options`),
            checked against the model's summary before anything starts; they reach the serving
            script in the job's environment.
        :param known_covariates: a time series' known covariates for the horizon (a DataFrame).
        :param static_features: a time series' static features, one row per item (a DataFrame).
        :param data_checks: the serving script profiles each request as it scores it, for
            :meth:`data_report` (models whose requests are rows; others ignore it).
        """
        if not naming.is_valid_name(job_name):
            raise InvalidParameterError("job_name", job_name, "use 1-63 letters, digits and hyphens.")
        if not isinstance(instance_count, int) or instance_count < 1:
            raise InvalidParameterError("instance_count", instance_count, "expected an integer >= 1.")
        predict_options.validate(predict_kwargs)  # the options' shape; against the model once its summary is read
        self.settings.cloud_output_path  # noqa: B018 - validates the output location before anything else
        self.models.check_uri(model_uri)
        summary = self.models.summary(model_uri)  # read once: the features here, the version for the image
        kind = ModelSummary.from_dict(summary).kind
        interpreter = kind.local_python()
        features = summary.get("features") or []
        options = predict_options.validate(predict_kwargs, summary)
        environment = dict(environment or {})
        if options:
            environment[predict_options.ENV_VAR] = predict_options.to_json(options)
        # The kind decides from the input: a folder of files, each one request (images), or its usual rule.
        shape = kind.file_transform(test_data, summary)
        if kind.batch_split == SERIES and shape is None:
            frames = _series_inputs(kind, summary, test_data, known_covariates, static_features)
        elif known_covariates is not None or static_features is not None:
            raise InvalidParameterError(
                "known_covariates" if known_covariates is not None else "static_features",
                "(given)",
                f"{kind.name} models take neither; pass test_data only.",
            )
        folder_files = self._folder_files(test_data) if shape is not None else None
        rows = kind.batch_split != SERIES and shape is None
        prepared = self.staging.prepare_data(test_data, "test_data", features) if rows else None
        shape = shape or kind.transform
        try:
            found = self.jobs.find(JobKind.TRANSFORM, job_name)
            if isinstance(found, JobSubmission):
                return found
            name = found
            if folder_files is not None:
                staged = self._stage_folder(test_data, folder_files)
            elif prepared is None:
                staged = self._stage_series(kind, summary, frames, instance_count)
            else:
                staged = self.staging.stage_scoring_input(prepared, features)
        finally:
            if prepared is not None:
                prepared.cleanup()
        output_path = join_uri(self.settings.cloud_output_path, "batch_transform", name)
        if data_checks:
            environment[PROFILE_ENV] = MonitoringService.profile_uri(output_path)
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
            output_path=output_path,
            instance_type=instance_type,
            instance_count=instance_count,
            content_type=shape.content_type,
            accept=shape.accept,
            split_type=shape.split_type,
            batch_strategy=shape.batch_strategy,
            assemble_with=shape.assemble_with,
            max_runtime=max_runtime,
            environment=environment,
            tags={PROVIDER_TAG: "transform", **(tags or {})},
            interpreter=interpreter,
        )
        self.log.info("Creating transform job %s on the %s backend (input %s)", name, self.backend.name, staged.uri)
        try:
            self.backend.create_transform_job(spec)
        except Exception:
            self.backend.delete_model(model_name)
            raise
        return JobSubmission(name, JobStatus.IN_PROGRESS, reattached=False)

    def _stage_series(
        self, kind: PredictorKind, summary: dict[str, Any], frames: tuple[Any, Any, Any], instance_count: int
    ) -> Any:
        """Whole series partitioned by item into JSON envelopes, staged together as one prefix: at
        least one part per instance where there are enough items, so every instance has work."""
        with tempfile.TemporaryDirectory() as tmp:
            paths = kind.write_batch_parts(*frames, summary, Path(tmp) / "test_data", min_parts=instance_count)
            return self.staging.stage_parts(paths, "test_data")

    def _folder_files(self, folder: Any) -> list[str]:
        """Every file a folder of images sends, each checked to be an image by its first bytes.

        An ``s3://`` prefix is sent whole (every object under it is a request); a local folder's
        hidden files are left out, as they are not staged.
        """
        from airflow_autogluon_cloud.kinds.images import HEAD_BYTES, looks_like_image

        remote = is_s3_uri(str(folder))
        uri = str(folder) if remote else str(Path(folder).expanduser().resolve())
        storage = self.storage(uri)
        files = [
            f
            for f in storage.list(uri)
            if not f.endswith("/") and (remote or not any(p.startswith(".") for p in relative_key(uri, f).split("/")))
        ]
        if not files:
            raise InvalidParameterError(
                "test_data", str(folder), "the folder holds no files: give a folder (or s3:// prefix) of image files."
            )
        for file in files:
            if not looks_like_image(storage.read_head(file, HEAD_BYTES)):
                raise InvalidParameterError(
                    "test_data",
                    file,
                    "not an image (PNG, JPEG, GIF, BMP, TIFF or WebP, by its first bytes): every file under the "
                    "folder is sent as one image; move other files out.",
                )
        return files

    def _stage_folder(self, folder: Any, files: list[str]) -> StagedObject:
        """An ``s3://`` prefix is read where it is; a local folder is staged, its sub-folders kept."""
        if is_s3_uri(str(folder)):
            return StagedObject(str(folder), 0)
        root = Path(folder).expanduser().resolve()
        return self.staging.stage_parts([Path(f) for f in files], "test_images", root=root)

    def result(self, job_name: str) -> dict[str, Any]:
        """The small XCom dict for a transform job: output URI, input, status."""
        desc = self.jobs.describe(JobKind.TRANSFORM, job_name)
        output_uri = None
        if desc.status == JobStatus.COMPLETED and desc.artifact_uri:
            source = desc.secondary_uri or ""
            # An input prefix (files scored one request each) has one .out per file under the output prefix.
            output_uri = (
                desc.artifact_uri
                if source.endswith("/")
                else join_uri(desc.artifact_uri, source.rsplit("/", 1)[-1] + ".out")
            )
        return {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend.name,
            "input_uri": desc.secondary_uri,
            "output_uri": output_uri,
            "model_name": desc.model_name,
            "usage": job_usage(desc, self.settings.instance_prices),
        }

    @cached_property
    def monitoring(self) -> MonitoringService:
        return MonitoringService(storage=self.storage, log=self.log, models=self.models)

    def data_report(self, job_name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """A finished transform job's data checks (:meth:`MonitoringService.batch_report`): merged
        from the per-request profiles, written next to the output; the summary for the XCom."""
        desc = self.jobs.describe(JobKind.TRANSFORM, job_name)
        if desc.status != JobStatus.COMPLETED or not desc.artifact_uri:
            return {"status": "not_profiled", "violations": 0, "checks": {}, "drifted_columns": []}
        return self.monitoring.batch_report(desc.artifact_uri, options)

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
                raw = self.training.read_predictions(job_name)
                return pd.read_json(io.BytesIO(raw), lines=True, precise_float=True)
            except ResourceNotFoundError:
                raise ResourceNotFoundError(
                    "Transform or training job", job_name, self.backend.name, "no job of either kind has this name."
                ) from None
        if not result["output_uri"]:
            raise JobFailedError("Transform job", job_name, result["status"], "it has no results (not Completed)")
        storage = self.storage(result["output_uri"])
        uris = [result["output_uri"]]
        per_file = (result["input_uri"] or "").endswith("/")
        if per_file:
            uris = sorted(uri for uri in storage.list(result["output_uri"]) if uri.endswith(".out"))
        frames = []
        with tempfile.TemporaryDirectory() as tmp:
            for number, uri in enumerate(uris):
                path = Path(tmp) / f"results-{number}"
                storage.download_file(uri, path)
                answer = _read_answer(path)
                if per_file and not answer.attrs.get("whole_answer"):  # rows' answers: say which file each answers
                    answer[INPUT_FILE_COLUMN] = relative_key(result["output_uri"], uri)[: -len(".out")]
                frames.append(answer)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        frame.attrs["whole_answer"] = frames[0].attrs.get("whole_answer", False)
        return frame

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
        files = frame.pop(INPUT_FILE_COLUMN) if INPUT_FILE_COLUMN in frame.columns else None
        if frame.attrs.get("whole_answer"):
            pass  # forecasts: item, timestamp, mean and quantiles, kept whole
        elif predict_proba:
            proba = split_proba(frame)
            if include_predict and hasattr(proba, "columns"):
                proba.insert(0, frame.columns[0], frame.iloc[:, 0])
            frame = proba.to_frame() if not hasattr(proba, "columns") else proba
        else:
            frame = frame.iloc[:, [0]]
        if files is not None:
            frame.insert(0, INPUT_FILE_COLUMN, files)
        target = Path(save_path) if save_path else self.settings.local_root / "batch_results" / job_name
        if target.suffix != ".csv":
            target = target / "predictions.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
        return str(target)


def _read_answer(path: Path) -> pd.DataFrame:
    """One output file: JSON lines (rows' answers) or CSV with a header (forecasts)."""
    import pandas as pd

    with open(path, "rb") as fh:
        first = fh.read(1)
    if first == b"{":
        return pd.read_json(path, lines=True)
    frame = pd.read_csv(path, float_precision="round_trip")
    frame.attrs["whole_answer"] = True  # a forecast: every column is the answer, none is "the prediction"
    return frame


def _series_inputs(
    kind: PredictorKind, summary: dict[str, Any], history: Any, known: Any, static: Any
) -> tuple[Any, Any, Any]:
    """The history, known covariates and static features as DataFrames, checked against the model."""
    import pandas as pd

    frames = []
    for parameter, value in (("test_data", history), ("known_covariates", known), ("static_features", static)):
        if value is None or is_dataframe(value):
            frames.append(value)
        elif isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            path = Path(value)
            frames.append(pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path))
        else:
            raise InvalidParameterError(parameter, value, "give a DataFrame or a local CSV or Parquet file.")
    if frames[0] is None or not len(frames[0]):
        raise InvalidParameterError("test_data", None, "give the history of every item to forecast.")
    kind.check_batch_inputs(frames[0], frames[1], frames[2], summary)
    return frames[0], frames[1], frames[2]
