"""AutoGluonCloudHook: AWS connection and role, S3 staging, and the AutoGluon cloud lifecycle.

The hook is the only place that knows how a training job is assembled (staged channels, the
``ag_args.json`` configuration, the code archive, the image) and how a task finds the job its
earlier try started. Backends (``local`` or ``sagemaker``) do the rest behind one interface.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_autogluon_cloud import naming, polling
from airflow_autogluon_cloud.aws import AwsSettings
from airflow_autogluon_cloud.backends.base import (
    CHANNEL_CODE,
    CHANNEL_CONFIG,
    CHANNEL_TRAIN,
    CHANNEL_TUNING,
    PROVIDER_TAG,
    SERVE_SCRIPT,
    TRAIN_SCRIPT,
    Backend,
    JobDescription,
    TrainingJobSpec,
)
from airflow_autogluon_cloud.datasets import DataInput, prepare_input
from airflow_autogluon_cloud.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobTimeoutError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.jobconfig import build_ag_args, dumps_canonical, label_of
from airflow_autogluon_cloud.settings import resolve_backend, resolve_cloud_output_path, resolve_local_root
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import S3Storage, Storage, join_uri, sha256_file, storage_for

if TYPE_CHECKING:
    import pandas as pd

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
TRAINING = "training"
TRANSFORM = "transform"
_MAX_GENERATIONS = 20


@dataclass
class StagedObject:
    """A staged input: its URI, and how many bytes this call actually uploaded (0 if reused)."""

    uri: str
    uploaded_bytes: int
    sha256: str | None = None


@dataclass
class TrainingSubmission:
    """The job a task is following, and whether it was started now or found from an earlier try."""

    job_name: str
    status: JobStatus
    reattached: bool


def installed_autogluon_version() -> str:
    """Version of the installed ``autogluon.tabular`` (read from metadata, without importing it)."""
    try:
        return metadata.version("autogluon.tabular")
    except metadata.PackageNotFoundError:
        return "unknown"


class AutoGluonCloudHook(BaseHook):
    """Train, deploy and serve AutoGluon predictors on SageMaker or on this machine.

    Credentials and role assumption come from the Amazon provider's AWS connection: its
    ``region_name``, ``role_arn`` and ``assume_role_kwargs`` (e.g. ``{"ExternalId": ...}``),
    ``endpoint_url`` and ``service_config`` all apply. ``role_arn``/``external_id`` arguments
    override the connection's; the role is also the execution role passed to SageMaker.

    :param aws_conn_id: Airflow AWS connection id; ``None`` uses boto3's default credential chain.
    :param region_name: AWS region, overriding the connection's.
    :param role_arn: IAM role to assume for API calls and to run SageMaker jobs as.
    :param external_id: external id for assuming ``role_arn``.
    :param backend: ``local`` or ``sagemaker``; default ``[autogluon_cloud] backend``, else ``local``.
    :param cloud_output_path: where artifacts go (a local directory or ``s3://bucket/prefix``).
    :param local_root: the local backend's state directory (default ``$AIRFLOW_HOME/autogluon_cloud``).
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "autogluon_cloud"
    hook_name = "AutoGluon Cloud"

    def __init__(
        self,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        role_arn: str | None = None,
        external_id: str | None = None,
        backend: str | None = None,
        cloud_output_path: str | None = None,
        local_root: str | None = None,
    ) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.backend_name = resolve_backend(backend)
        self.local_root = resolve_local_root(local_root)
        self._cloud_output_path = cloud_output_path
        self.aws = AwsSettings(aws_conn_id, region_name, role_arn, external_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "port", "schema"],
            "relabeling": {"login": "AWS Access Key ID", "password": "AWS Secret Access Key"},
            "placeholders": {
                "extra": json.dumps(
                    {
                        "region_name": "eu-west-1",
                        "role_arn": "arn:aws:iam::123456789012:role/AutoGluonSageMaker",
                        "assume_role_kwargs": {"ExternalId": "my-external-id"},
                    }
                )
            },
        }

    def hook_params(self) -> dict[str, Any]:
        """Primitives that rebuild an equivalent hook (for triggers and detached processes)."""
        return {
            **self.aws.to_dict(),
            "backend": self.backend_name,
            "cloud_output_path": self._cloud_output_path,
            "local_root": str(self.local_root),
        }

    # plumbing --------------------------------------------------------------------------------

    @cached_property
    def cloud_output_path(self) -> str:
        return resolve_cloud_output_path(self._cloud_output_path, self.backend_name, self.local_root)

    @cached_property
    def backend(self) -> Backend:
        if self.backend_name == "sagemaker":
            from airflow_autogluon_cloud.backends.sagemaker import SageMakerBackend

            return SageMakerBackend(self.aws.client, region_name=self.aws.resolved_region)
        from airflow_autogluon_cloud.backends.local.backend import LocalBackend

        return LocalBackend(self.local_root, aws=self.aws)

    def storage(self, uri: str) -> Storage:
        return storage_for(uri, self.aws.client)

    # staging ---------------------------------------------------------------------------------

    def stage_file(self, path: str | os.PathLike[str], filename: str | None = None) -> StagedObject:
        """Copy a local file to ``<cloud_output_path>/staging/<sha256>/<filename>``.

        The key is the content's SHA-256 (computed in one streaming pass), so staging unchanged
        data again uploads nothing, and two different files never share a key.
        """
        path = Path(path)
        digest = sha256_file(path)
        uri = join_uri(self.cloud_output_path, "staging", digest, filename or path.name)
        storage = self.storage(uri)
        size = path.stat().st_size
        if storage.size(uri) == size:
            self.log.info("Staging: %s is already at %s; nothing uploaded.", path.name, uri)
            return StagedObject(uri, 0, digest)
        self.log.info("Staging: uploading %s (%.1f MB) to %s", path.name, size / 1e6, uri)
        storage.upload_file(path, uri)
        return StagedObject(uri, size, digest)

    def stage_bytes(self, data: bytes, filename: str) -> StagedObject:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_bytes(data)
            return self.stage_file(path, filename)

    def stage_data(self, data: Any, parameter: str, required_columns: list[str] | None = None) -> StagedObject:
        """Stage a DataFrame, local file or ``s3://`` URI as an input; S3 inputs are used in place."""
        prepared = self.prepare_data(data, parameter, required_columns)
        try:
            return self._stage_prepared(prepared)
        finally:
            prepared.cleanup()

    def prepare_data(self, data: Any, parameter: str, required_columns: list[str] | None = None) -> DataInput:
        s3 = S3Storage(lambda: self.aws.client("s3")) if isinstance(data, str) and data.startswith("s3:") else None
        return prepare_input(data, parameter, required_columns=required_columns, s3_storage=s3)

    def _stage_prepared(self, prepared: DataInput) -> StagedObject:
        if prepared.s3_uri is not None:
            return StagedObject(prepared.s3_uri, 0)
        assert prepared.local_path is not None
        name = f"{prepared.parameter}{''.join(prepared.local_path.suffixes[-2:]) or '.csv'}"
        if prepared.temporary:
            name = f"{prepared.parameter}.csv"
        return self.stage_file(prepared.local_path, name)

    @staticmethod
    def build_code_archive() -> bytes:
        """``sourcedir.tar.gz`` with the entry scripts, byte-identical for identical scripts."""
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w") as tar:
                for script in (TRAIN_SCRIPT, SERVE_SCRIPT):
                    data = (CONTAINER_DIR / script).read_bytes()
                    info = tarfile.TarInfo(script)
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    # training --------------------------------------------------------------------------------

    def start_training(
        self,
        *,
        job_name: str,
        train_data: Any,
        predictor_type: str = "tabular",
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
    ) -> TrainingSubmission:
        """Start a training job under ``job_name``, or pick up the one an earlier try started.

        Everything is validated before any resource is created. Then, for ``job_name`` and its
        generations (``<name>-r1``, ``-r2``, ...): an ``InProgress`` job is reattached to, a
        ``Completed`` one is reused, and a failed or stopped one is skipped, so a fresh job starts
        under the next free name.
        """
        if not naming.is_valid_name(job_name):
            raise InvalidParameterError(
                "job_name",
                job_name,
                "use 1-63 letters, digits and hyphens, starting with a letter or digit (SageMaker's rule).",
            )
        for parameter, value in (("volume_size", volume_size), ("max_runtime", max_runtime)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidParameterError(parameter, value, "expected a positive integer.")
        ag_args = build_ag_args(predictor_type, predictor_init_args, predictor_fit_args)
        label = label_of(predictor_type, ag_args["predictor_init_args"])
        required = [label] if label else []
        train = self.prepare_data(train_data, "train_data", required)
        tuning = self.prepare_data(tuning_data, "tuning_data", required) if tuning_data is not None else None
        try:
            if self.backend_name == "sagemaker":
                image = custom_image_uri or self._image_uri(framework_version, "training", instance_type)
                version = framework_version or _version_from_image(image)
                if not self.aws.execution_role_arn:
                    raise InvalidParameterError(
                        "role_arn",
                        None,
                        "SageMaker jobs need an execution role: pass role_arn or set role_arn in the AWS "
                        "connection's extra.",
                    )
            else:
                image = custom_image_uri
                version = installed_autogluon_version()
                if framework_version and framework_version != version:
                    self.log.warning(
                        "framework_version=%s ignored on the local backend: it trains with the installed AutoGluon %s.",
                        framework_version,
                        version,
                    )

            found = self._find_training_job(job_name)
            if isinstance(found, TrainingSubmission):
                return found
            name = found

            self.log.info("Staging inputs for training job %s under %s", name, self.cloud_output_path)
            # Each channel is one object's URI: as an S3Prefix it matches exactly that object.
            channels = {
                CHANNEL_TRAIN: self._stage_prepared(train).uri,
                CHANNEL_CONFIG: self.stage_bytes(dumps_canonical(ag_args), "ag_args.json").uri,
                CHANNEL_CODE: self.stage_bytes(self.build_code_archive(), "sourcedir.tar.gz").uri,
            }
            if tuning is not None:
                channels[CHANNEL_TUNING] = self._stage_prepared(tuning).uri
        finally:
            train.cleanup()
            if tuning is not None:
                tuning.cleanup()

        spec = TrainingJobSpec(
            name=name,
            channels=channels,
            output_path=join_uri(self.cloud_output_path, "model"),
            hyperparameters={"ag_predictor_type": predictor_type, "ag_framework_version": version},
            instance_type=instance_type,
            volume_size=volume_size,
            max_runtime=max_runtime,
            image_uri=image,
            role_arn=self.aws.execution_role_arn if self.backend_name == "sagemaker" else None,
            tags={PROVIDER_TAG: "training", **(tags or {})},
            environment=dict(environment or {}),
        )
        self.log.info("Creating training job %s on the %s backend", name, self.backend_name)
        self.backend.create_training_job(spec)
        return TrainingSubmission(name, JobStatus.IN_PROGRESS, reattached=False)

    def _find_training_job(self, base: str) -> TrainingSubmission | str:
        """The job to follow (an existing one) or the first free name for a new job."""
        for generation in range(_MAX_GENERATIONS):
            name = naming.generation_name(base, generation)
            try:
                desc = self.backend.describe_training_job(name)
            except ResourceNotFoundError:
                return name
            if desc.status == JobStatus.IN_PROGRESS:
                self.log.info("Training job %s is already running (started by an earlier try); reattaching.", name)
                return TrainingSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.COMPLETED:
                self.log.info("Training job %s already completed (an earlier try); reusing its result.", name)
                return TrainingSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.STOPPING:
                self.wait_for_job(TRAINING, name, check_interval=5, stream_log=False, raise_on_failure=False)
            self.log.info(
                "Training job %s ended as %s (%s); starting a fresh job under a new name.",
                name,
                desc.status.value,
                desc.failure_reason or "no reason given",
            )
        raise InvalidParameterError(
            "job_name", base, f"{_MAX_GENERATIONS} jobs under this name already failed; pick a new job_name."
        )

    def _image_uri(self, framework_version: str | None, scope: str, instance_type: str) -> str:
        from airflow_autogluon_cloud.images import image_uri

        return image_uri(framework_version or "latest", scope, self.aws.resolved_region, instance_type)

    def describe_job(self, kind: str, name: str) -> JobDescription:
        if kind == TRAINING:
            return self.backend.describe_training_job(name)
        return self.backend.describe_transform_job(name)

    def stop_job(self, kind: str, name: str) -> None:
        self.log.info("Stopping %s job %s", kind, name)
        if kind == TRAINING:
            self.backend.stop_training_job(name)
        else:
            self.backend.stop_transform_job(name)

    def read_log(self, kind: str, name: str, cursor: dict[str, Any] | None) -> Any:
        if kind == TRAINING:
            return self.backend.read_training_log(name, cursor)
        return self.backend.read_transform_log(name, cursor)

    def log_tail(self, kind: str, name: str, lines: int = 20) -> str:
        tail = getattr(self.backend, "log_tail", None)
        if tail is not None:
            return str(tail(kind, name, lines))
        return ""

    def wait_for_job(
        self,
        kind: str,
        name: str,
        *,
        check_interval: float = 30,
        max_check_interval: float | None = None,
        stream_log: bool = True,
        raise_on_failure: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> JobDescription:
        """Block until the job ends, streaming its log into the task log.

        The wait is bounded by the job's own maximum runtime (plus provisioning slack), never by
        a fixed number of attempts. Polls back off from ``check_interval`` to the ceiling.
        """
        interval = float(check_interval)
        ceiling = polling.max_interval(check_interval, max_check_interval)
        cursor: dict[str, Any] | None = None
        started = time.time()
        while True:
            desc = self.describe_job(kind, name)
            if stream_log:
                cursor = self._stream_log(kind, name, cursor)
            if desc.status.is_terminal:
                if raise_on_failure:
                    self.raise_for_status(desc)
                return desc
            deadline = polling.wait_deadline(desc.created_at, desc.max_runtime, self.backend_name, started)
            if deadline is not None and time.time() > deadline:
                raise JobTimeoutError(f"{kind.capitalize()} job", name, desc.status.value, time.time() - started)
            self.log.info("%s job %s is %s; next check in %.0fs", kind.capitalize(), name, desc.status.value, interval)
            sleep(interval)
            interval = polling.next_interval(interval, ceiling)

    def _stream_log(self, kind: str, name: str, cursor: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            chunk = self.read_log(kind, name, cursor)
        except Exception as err:  # logs are a convenience; never fail a job because of them
            self.log.debug("Could not read the log of %s: %s", name, err)
            return cursor
        for line in chunk.lines:
            self.log.info("[%s] %s", name, line)
        return dict(chunk.cursor)

    def raise_for_status(self, desc: JobDescription) -> None:
        """Raise :class:`JobFailedError` unless the job completed."""
        if desc.status.is_successful:
            return
        kind = "Training job" if desc.kind == TRAINING else "Transform job"
        raise JobFailedError(
            kind, desc.name, desc.status.value, desc.failure_reason, self.log_tail(desc.kind, desc.name)
        )

    # results ---------------------------------------------------------------------------------

    def read_training_output(self, job_name: str, member: str) -> bytes | None:
        """Read one file (``leaderboard.csv``, ``training_summary.json``) from ``output.tar.gz``."""
        desc = self.backend.describe_training_job(job_name)
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

    def training_summary(self, job_name: str) -> dict[str, Any]:
        raw = self.read_training_output(job_name, "training_summary.json")
        return json.loads(raw) if raw else {}

    def get_leaderboard(self, job_name: str) -> pd.DataFrame:
        """The job's leaderboard (one row per model, best first) as a DataFrame."""
        import pandas as pd

        raw = self.read_training_output(job_name, "leaderboard.csv")
        if raw is None:
            return pd.DataFrame()
        return pd.read_csv(io.BytesIO(raw))

    def training_result(self, job_name: str) -> dict[str, Any]:
        """The small, JSON-serialisable dict fit operators and sensors push to XCom."""
        desc = self.backend.describe_training_job(job_name)
        hps = desc.hyperparameters
        result: dict[str, Any] = {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend_name,
            "predictor_type": hps.get("ag_predictor_type", "tabular"),
            "framework_version": hps.get("ag_framework_version"),
            "model_artifact_uri": desc.artifact_uri if desc.status == JobStatus.COMPLETED else None,
            "leaderboard_uri": desc.secondary_uri if desc.status == JobStatus.COMPLETED else None,
            "cloud_output_path": self.cloud_output_path,
        }
        if desc.status == JobStatus.COMPLETED:
            summary = self.training_summary(job_name)
            result["metrics"] = {
                key: summary.get(key) for key in ("eval_metric", "score_val", "best_model", "problem_type", "label")
            }
            result["framework_version"] = summary.get("autogluon_version") or result["framework_version"]
        return result


def _version_from_image(image: str) -> str | None:
    tag = image.rsplit(":", 1)[-1]
    version = tag.split("-", 1)[0]
    return version if version[:1].isdigit() else None
