"""Training: assemble a job (staged channels, ``ag_args.json``, code, image), and read its results.

The only place that knows how a training job is put together; a task finds the job an earlier
try started through :meth:`JobService.find`, so a retry reattaches instead of training twice.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.base import (
    CHANNEL_CODE,
    CHANNEL_CONFIG,
    CHANNEL_PREDICT,
    CHANNEL_STATIC,
    CHANNEL_TRAIN,
    CHANNEL_TUNING,
    FIT_PREDICTIONS_FILE,
    PROVIDER_TAG,
    Backend,
    JobDescription,
    TrainingJobSpec,
)
from airflow_autogluon_cloud.datasets import DataInput
from airflow_autogluon_cloud.exceptions import InvalidParameterError, JobFailedError
from airflow_autogluon_cloud.jobconfig import build_ag_args, dumps_canonical
from airflow_autogluon_cloud.kinds import DEFAULT_KIND, JobKind, PredictorKind, get_kind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.cost import usage as job_usage
from airflow_autogluon_cloud.services.jobs import JobService, JobSubmission
from airflow_autogluon_cloud.services.roles import ExecutionRole
from airflow_autogluon_cloud.services.staging import StagingService
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import StorageLocator, join_uri

if TYPE_CHECKING:
    import pandas as pd

#: Summary keys the fit XCom carries under ``metrics``.
_METRIC_KEYS = ("eval_metric", "score_val", "best_model", "problem_type", "label")


def _positive_int(parameter: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidParameterError(parameter, value, "expected a positive integer.")


@dataclass
class TrainingService:
    """Starts training jobs and reads what they produced.

    :param backend: where jobs run.
    :param jobs: job control (finding an earlier try's job).
    :param staging: staging of channels.
    :param storage: the storage for any URI (reading ``output.tar.gz``).
    :param settings: where artifacts go.
    :param execution_role: the role jobs run as, on backends that use one.
    :param log: the task log.
    """

    backend: Backend
    jobs: JobService
    staging: StagingService
    storage: StorageLocator
    settings: ProviderSettings
    execution_role: ExecutionRole
    log: TaskLog

    def start(
        self,
        *,
        job_name: str,
        train_data: Any,
        predictor_type: str = DEFAULT_KIND.name,
        tuning_data: Any = None,
        predictor_init_args: Any = None,
        predictor_fit_args: Any = None,
        instance_type: str = "ml.m5.2xlarge",
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        volume_size: int = 100,
        max_runtime: int = 24 * 3600,
        tags: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        predict_data: Any = None,
        timeseries_columns: dict[str, str] | None = None,
        static_features: Any = None,
        named_init_args: dict[str, Any] | None = None,
    ) -> JobSubmission:
        """Start a training job under ``job_name``, or pick up the one an earlier try started.

        Everything is validated before any resource is created (see :meth:`JobService.find` for
        how an earlier try's job is reused).

        :param predict_data: data to score with the fitted predictor inside the same job (a
            DataFrame, a local file or an ``s3://`` CSV URI); the job writes it to its output in
            the batch transform's format (see :meth:`result`'s ``predictions``). For a time
            series: the whole series to forecast the next ``prediction_length`` steps of (often the
            training data itself); the forecast is written as JSON lines of ``item_id``,
            ``timestamp``, ``mean`` and one column per quantile.
        :param timeseries_columns: a time series' ``id_column`` and ``timestamp_column`` (default
            ``item_id`` and ``timestamp``).
        :param static_features: a time series' static features, one row per item (a DataFrame, a
            local file or an ``s3://`` CSV URI).
        :param named_init_args: init arguments the operator takes as its own parameters (a time
            series' ``target``, ``prediction_length``, ``freq``...), merged into ``predictor_init_args``.
        """
        if not naming.is_valid_name(job_name):
            raise InvalidParameterError(
                "job_name",
                job_name,
                "use 1-63 letters, digits and hyphens, starting with a letter or digit (SageMaker's rule).",
            )
        self.settings.cloud_output_path  # noqa: B018 - validates the output location before anything else
        _positive_int("volume_size", volume_size)
        _positive_int("max_runtime", max_runtime)
        kind = get_kind(predictor_type)
        ag_args = build_ag_args(
            kind.name,
            predictor_init_args,
            predictor_fit_args,
            timeseries_columns=timeseries_columns,
            named_init_args=named_init_args,
        )
        kind.check_fit_args(ag_args["predictor_fit_args"])
        required = kind.required_columns(kind.label_of(ag_args["predictor_init_args"]), ag_args)
        kind.check_predict_data(predict_data, ag_args)
        interpreter = kind.local_python()
        _check_remote_predict_data(predict_data)
        if static_features is not None and not kind.accepts_static_features:
            kind.check_static_features(static_features, [], ag_args)  # refuses, naming the kind
        train = tuning = scoring = static = None
        side: dict[str, Path] = {}
        workdir = Path(tempfile.mkdtemp(prefix="agc-side-inputs-"))
        try:
            # Inside the try: a later input that fails its checks still removes the earlier ones' temp files.
            train = self.staging.prepare_data(train_data, "train_data", required)
            items = self._check_whole_data(kind, train, ag_args)
            train, side = self._side_inputs(kind, train, ag_args, workdir)
            if tuning_data is not None:
                tuning = self.staging.prepare_data(tuning_data, "tuning_data", required)
                self._check_whole_data(kind, tuning, ag_args)
                tuning, tuning_side = self._side_inputs(kind, tuning, ag_args, workdir)
                side.update(tuning_side)
            if predict_data is not None:
                scoring = self.staging.prepare_data(predict_data, "predict_data", kind.predict_data_columns(required))
                self._check_whole_data(kind, scoring, ag_args)
            if static_features is not None:
                static = self.staging.prepare_data(static_features, "static_features", [])
                if static.local_path is not None and items is not None:
                    kind.check_static_features(_read_local(static), items, ag_args)
            image = self.backend.resolve_image(
                "training",
                framework_version=framework_version,
                custom_image_uri=custom_image_uri,
                instance_type=instance_type,
            )
            if image.note:
                self.log.warning("%s", image.note)
            role = self.execution_role()
            found = self.jobs.find(JobKind.TRAINING, job_name)
            if isinstance(found, JobSubmission):
                return found
            name = found
            self.log.info("Staging inputs for training job %s under %s", name, self.settings.cloud_output_path)
            # Each channel is one object's URI: as an S3Prefix it matches exactly that object.
            channels = {
                CHANNEL_TRAIN: self.staging.stage_prepared(train).uri,
                CHANNEL_CONFIG: self.staging.stage_bytes(dumps_canonical(ag_args), "ag_args.json").uri,
                CHANNEL_CODE: self.staging.stage_code().uri,
            }
            if tuning is not None:
                channels[CHANNEL_TUNING] = self.staging.stage_prepared(tuning).uri
            if scoring is not None:
                # As CSV with a header: the training job scores it through serve.py's text/csv path.
                channels[CHANNEL_PREDICT] = self.staging.stage_scoring_input(scoring, []).uri
            if static is not None:
                channels[CHANNEL_STATIC] = self.staging.stage_prepared(static).uri
            for channel, path in sorted(side.items()):
                # Content-addressed: images already staged by an earlier job are not uploaded again.
                channels[channel] = self.staging.stage_file(path).uri
        finally:
            for prepared in (train, tuning, scoring, static):
                if prepared is not None:
                    prepared.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)

        spec = TrainingJobSpec(
            name=name,
            channels=channels,
            output_path=join_uri(self.settings.cloud_output_path, "model"),
            hyperparameters={"ag_predictor_type": kind.name, "ag_framework_version": image.framework_version},
            instance_type=instance_type,
            volume_size=volume_size,
            max_runtime=max_runtime,
            image_uri=image.image_uri,
            role_arn=role,
            tags={PROVIDER_TAG: "training", **(tags or {})},
            environment=dict(environment or {}),
            interpreter=interpreter,
        )
        self.log.info("Creating training job %s on the %s backend", name, self.backend.name)
        self.backend.create_training_job(spec)
        return JobSubmission(name, JobStatus.IN_PROGRESS, reattached=False)

    def _check_whole_data(self, kind: PredictorKind, prepared: DataInput, ag_args: dict[str, Any]) -> Any:
        """The kind's checks on the whole data (series rules); the items found, or ``None`` if not read.

        Remote data is checked by the training job itself, which reads it anyway.
        """
        if not kind.checks_whole_data:
            return None
        if prepared.local_path is None:
            self.log.info("%s is remote: the training job checks its series", prepared.parameter)
            return None
        frame = _read_local(prepared)
        kind.check_training_data(frame, prepared.parameter, ag_args)
        item_column = kind.item_column(ag_args)
        return frame[item_column].unique().tolist() if item_column else None

    def _side_inputs(
        self, kind: PredictorKind, prepared: DataInput, ag_args: dict[str, Any], workdir: Path
    ) -> tuple[DataInput, dict[str, Path]]:
        """The input to stage (rewritten if the kind stages files beside it) and those files by channel."""
        if not kind.checks_whole_data or prepared.local_path is None:
            return prepared, {}
        frame, files = kind.side_inputs(_read_local(prepared), prepared.parameter, ag_args, workdir)
        if frame is None:
            return prepared, dict(files)
        path = workdir / f"{prepared.parameter}.csv"
        frame.to_csv(path, index=False)
        prepared.cleanup()
        columns = [str(c) for c in frame.columns]
        return DataInput(prepared.parameter, local_path=path, columns=columns, temporary=False), dict(files)

    # results ---------------------------------------------------------------------------------

    def read_output(self, job: str | JobDescription, member: str) -> bytes | None:
        """One file (``leaderboard.csv``, ``training_summary.json``) from the job's ``output.tar.gz``."""
        desc = job if isinstance(job, JobDescription) else self.jobs.describe(JobKind.TRAINING, job)
        if desc.status != JobStatus.COMPLETED or not desc.secondary_uri:
            return None
        from airflow_autogluon_cloud.archives import safe_extract

        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "output.tar.gz"
            try:
                self.storage(desc.secondary_uri).download_file(desc.secondary_uri, archive)
            except FileNotFoundError:
                return None
            except Exception as err:
                self.log.warning("Could not read %s: %s", desc.secondary_uri, err)
                return None
            out = safe_extract(archive, Path(tmp) / "output")
            target = out / member
            return target.read_bytes() if target.is_file() else None

    def summary(self, job: str | JobDescription) -> dict[str, Any]:
        raw = self.read_output(job, "training_summary.json")
        return json.loads(raw) if raw else {}

    def leaderboard(self, job_name: str) -> pd.DataFrame:
        """The job's leaderboard (one row per model, best first) as a DataFrame."""
        import pandas as pd

        raw = self.read_output(job_name, "leaderboard.csv")
        if raw is None:
            return pd.DataFrame()
        return pd.read_csv(io.BytesIO(raw))

    def result(self, job_name: str) -> dict[str, Any]:
        """The small, JSON-serialisable dict fit operators and sensors push to XCom."""
        desc = self.jobs.describe(JobKind.TRAINING, job_name)
        completed = desc.status == JobStatus.COMPLETED
        hps = desc.hyperparameters
        result: dict[str, Any] = {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend.name,
            "predictor_type": hps.get("ag_predictor_type", DEFAULT_KIND.name),
            "framework_version": hps.get("ag_framework_version"),
            "model_artifact_uri": desc.artifact_uri if completed else None,
            "leaderboard_uri": desc.secondary_uri if completed else None,
            "cloud_output_path": self.settings.cloud_output_path,
            "usage": job_usage(desc, self.settings.instance_prices),
        }
        if completed:
            summary = self.summary(desc)  # the same description: the job is described once
            result["metrics"] = {key: summary.get(key) for key in _METRIC_KEYS}
            result["framework_version"] = summary.get("autogluon_version") or result["framework_version"]
            scored = summary.get("predictions")
            if scored:
                result["predictions"] = {"uri": desc.secondary_uri, "member": scored["file"], "rows": scored["rows"]}
        return result

    def read_predictions(self, job_name: str) -> bytes:
        """The JSON lines a training job wrote for its ``predict_data`` (train and score in one job)."""
        desc = self.jobs.describe(JobKind.TRAINING, job_name)
        if desc.status != JobStatus.COMPLETED:
            raise JobFailedError("Training job", job_name, desc.status.value, "it has no predictions (not Completed)")
        raw = self.read_output(desc, FIT_PREDICTIONS_FILE)
        if raw is None:
            raise InvalidParameterError(
                "job_name", job_name, "this training job scored no data: pass predict_data to AGFitOperator."
            )
        return raw


def _check_remote_predict_data(predict_data: Any) -> None:
    if isinstance(predict_data, str) and "://" in predict_data and not predict_data.lower().endswith(".csv"):
        raise InvalidParameterError(
            "predict_data", predict_data, "a remote file scored in the training job must be a .csv with a header."
        )


def _read_local(prepared: DataInput) -> pd.DataFrame:
    """A prepared local input as a DataFrame (CSV, Parquet or JSON lines)."""
    import pandas as pd

    assert prepared.local_path is not None
    path = prepared.local_path
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".jsonl", ".json")):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)
