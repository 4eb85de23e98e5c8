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
        self.cloud_output_path  # noqa: B018 - validates the output location before anything else
        for parameter, value in (("volume_size", volume_size), ("max_runtime", max_runtime)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidParameterError(parameter, value, "expected a positive integer.")
        ag_args = build_ag_args(predictor_type, predictor_init_args, predictor_fit_args)
        label = label_of(predictor_type, ag_args["predictor_init_args"])
        required = [label] if label else []
        train = self.prepare_data(train_data, "train_data", required)
        tuning = self.prepare_data(tuning_data, "tuning_data", required) if tuning_data is not None else None
        image: str | None
        try:
            if self.backend_name == "sagemaker":
                image = custom_image_uri or self._image_uri(framework_version, "training", instance_type)
                version = framework_version or _version_from_image(image) or "unknown"
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

            found = self._find_job(TRAINING, job_name)
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

    def _find_job(self, kind: str, base: str) -> TrainingSubmission | str:
        """The job to follow (one an earlier try started) or the first free name for a new job."""
        label = kind.capitalize()
        for generation in range(_MAX_GENERATIONS):
            name = naming.generation_name(base, generation)
            try:
                desc = self.describe_job(kind, name)
            except ResourceNotFoundError:
                return name
            if desc.status == JobStatus.IN_PROGRESS:
                self.log.info("%s job %s is already running (started by an earlier try); reattaching.", label, name)
                return TrainingSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.COMPLETED:
                self.log.info("%s job %s already completed (an earlier try); reusing its result.", label, name)
                return TrainingSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.STOPPING:
                self.wait_for_job(kind, name, check_interval=5, stream_log=False, raise_on_failure=False)
            self.log.info(
                "%s job %s ended as %s (%s); starting a fresh job under a new name.",
                label,
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

    # models ------------------------------------------------------------------------------------

    def check_model_uri(self, model_uri: Any, parameter: str = "model_uri") -> str:
        """Validate a ``model.tar.gz`` location before anything is created."""
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise InvalidParameterError(
                parameter, model_uri, "pass the fit task's model_artifact_uri or a model.tar.gz location."
            )
        if self.backend_name == "sagemaker" and not model_uri.startswith("s3://"):
            raise InvalidParameterError(
                parameter, model_uri, "SageMaker loads models from S3; give an s3://.../model.tar.gz URI."
            )
        if not model_uri.endswith(".tar.gz"):
            raise InvalidParameterError(parameter, model_uri, "expected a model.tar.gz artifact.")
        if not self.storage(model_uri).exists(model_uri):
            raise InvalidParameterError(parameter, model_uri, "no model artifact exists at that location.")
        return model_uri

    def model_summary(self, model_uri: str) -> dict[str, Any]:
        """``training_summary.json`` of the training job that produced ``model_uri`` ({} if unknown).

        It sits in ``output.tar.gz`` next to ``model.tar.gz`` for artifacts this provider made.
        """
        sibling = model_uri.rsplit("/", 1)[0] + "/output.tar.gz"
        from airflow_autogluon_cloud.archives import safe_extract

        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.storage(sibling).download_file(sibling, Path(tmp) / "output.tar.gz")
                out = safe_extract(Path(tmp) / "output.tar.gz", Path(tmp) / "out")
            except Exception:
                return {}
            path = out / "training_summary.json"
            return json.loads(path.read_text()) if path.is_file() else {}

    def create_model(
        self,
        model_name: str,
        model_uri: str,
        *,
        instance_type: str = "ml.m5.2xlarge",
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> bool:
        """Register a deployable model unless one with that name exists; return whether it was created."""
        from airflow_autogluon_cloud.backends.base import ModelSpec

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
        image = None
        if self.backend_name == "sagemaker":
            version = framework_version or self.model_summary(model_uri).get("autogluon_version")
            image = custom_image_uri or self._image_uri(version, "inference", instance_type)
        self.backend.create_model(
            ModelSpec(
                name=model_name,
                model_data_uri=model_uri,
                image_uri=image,
                role_arn=self.aws.execution_role_arn if self.backend_name == "sagemaker" else None,
                tags={PROVIDER_TAG: "model", **(tags or {})},
            )
        )
        return True

    # endpoints ---------------------------------------------------------------------------------

    def start_deploy(
        self,
        *,
        endpoint_name: str,
        model_uri: str,
        instance_type: str = "ml.m5.2xlarge",
        instance_count: int = 1,
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        volume_size: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create the endpoint, or move an existing one to ``model_uri`` without downtime.

        Names of the model and configuration derive from the endpoint and the artifact, so a
        retried task finds what its earlier try created. If a step fails, the pieces this call
        created are removed again.

        :return: the deploy plan: endpoint, config and model names, the action taken, and the
            configuration being replaced (removed by :meth:`finish_deploy`).
        """
        from airflow_autogluon_cloud.backends.base import EndpointConfigSpec

        if not naming.is_valid_name(endpoint_name):
            raise InvalidParameterError(
                "endpoint_name", endpoint_name, "use 1-63 letters, digits and hyphens (SageMaker's rule)."
            )
        if not isinstance(instance_count, int) or instance_count < 1:
            raise InvalidParameterError("instance_count", instance_count, "expected an integer >= 1.")
        self.cloud_output_path  # noqa: B018 - validates the output location before anything else
        self.check_model_uri(model_uri)
        digest = naming.short_hash(model_uri, instance_type, instance_count, framework_version, custom_image_uri, 8)
        model_name = naming.derived_name(endpoint_name, f"m-{digest}")
        config_name = naming.derived_name(endpoint_name, f"c-{digest}")
        all_tags = {PROVIDER_TAG: "endpoint", **(tags or {})}
        created: list[tuple[str, str]] = []
        try:
            if self.create_model(
                model_name,
                model_uri,
                instance_type=instance_type,
                framework_version=framework_version,
                custom_image_uri=custom_image_uri,
                tags=tags,
            ):
                created.append(("model", model_name))
            try:
                self.backend.describe_endpoint_config(config_name)
            except ResourceNotFoundError:
                self.backend.create_endpoint_config(
                    EndpointConfigSpec(
                        name=config_name,
                        model_name=model_name,
                        instance_type=instance_type,
                        instance_count=instance_count,
                        volume_size=volume_size,
                        tags=all_tags,
                    )
                )
                created.append(("endpoint_config", config_name))
            try:
                current = self.backend.describe_endpoint(endpoint_name)
            except ResourceNotFoundError:
                current = None
            plan = {
                "endpoint_name": endpoint_name,
                "config_name": config_name,
                "model_name": model_name,
                "model_uri": model_uri,
                "backend": self.backend_name,
                "created": [name for _, name in created],
                "replaced_config": None,
            }
            if current is None:
                self.log.info("Creating endpoint %s with config %s", endpoint_name, config_name)
                self.backend.create_endpoint(endpoint_name, config_name, all_tags)
                plan["action"] = "create"
            elif current.status.value == "Failed":
                self.log.warning("Endpoint %s is Failed (%s); replacing it.", endpoint_name, current.failure_reason)
                self.backend.delete_endpoint(endpoint_name)
                self._wait_endpoint_gone(endpoint_name)
                self.backend.create_endpoint(endpoint_name, config_name, all_tags)
                plan["action"] = "recreate"
                plan["replaced_config"] = current.config_name
            elif current.config_name == config_name:
                self.log.info(
                    "Endpoint %s already uses config %s (an earlier try); waiting for it.", endpoint_name, config_name
                )
                plan["action"] = "reattach"
            else:
                if not current.status.is_terminal:
                    self.wait_for_endpoint(endpoint_name, check_interval=10)
                self.log.info(
                    "Updating endpoint %s from config %s to %s", endpoint_name, current.config_name, config_name
                )
                self.backend.update_endpoint(endpoint_name, config_name)
                plan["action"] = "update"
                plan["replaced_config"] = current.config_name
            return plan
        except Exception:
            self._rollback(created)
            raise

    def _rollback(self, created: list[tuple[str, str]]) -> None:
        for kind, name in reversed(created):
            self.log.warning("Rolling back: deleting %s %s", kind.replace("_", " "), name)
            try:
                if kind == "endpoint_config":
                    self.backend.delete_endpoint_config(name)
                else:
                    self.backend.delete_model(name)
            except Exception as err:
                self.log.error("Could not delete %s %s during rollback: %s", kind, name, err)

    def _wait_endpoint_gone(self, endpoint_name: str, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.backend.describe_endpoint(endpoint_name)
            except ResourceNotFoundError:
                return
            time.sleep(5)

    def wait_for_endpoint(
        self,
        endpoint_name: str,
        *,
        check_interval: float = 30,
        max_check_interval: float | None = None,
        timeout: float = 3 * 3600,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Any:
        """Wait until the endpoint leaves Creating/Updating; return its description."""
        interval = float(check_interval)
        ceiling = polling.max_interval(check_interval, max_check_interval)
        deadline = time.monotonic() + timeout
        while True:
            desc = self.backend.describe_endpoint(endpoint_name)
            if desc.status.is_terminal:
                return desc
            if time.monotonic() > deadline:
                raise JobTimeoutError("Endpoint", endpoint_name, desc.status.value, timeout)
            self.log.info("Endpoint %s is %s; next check in %.0fs", endpoint_name, desc.status.value, interval)
            sleep(interval)
            interval = polling.next_interval(interval, ceiling)

    def finish_deploy(self, plan: dict[str, Any]) -> dict[str, Any]:
        """After waiting: confirm the endpoint serves the new config, then remove what it replaced.

        On failure the new config and model are rolled back and :class:`EndpointError` is raised.
        """
        from airflow_autogluon_cloud.exceptions import EndpointError

        name = plan["endpoint_name"]
        desc = self.backend.describe_endpoint(name)
        if desc.status.value != "InService" or desc.config_name != plan["config_name"]:
            reason = desc.failure_reason or f"status {desc.status.value}, serving config {desc.config_name}"
            if plan.get("action") in ("create", "recreate") and desc.status.value == "Failed":
                self.backend.delete_endpoint(name)
            self._rollback(
                [
                    (k, n)
                    for k, n in (("model", plan["model_name"]), ("endpoint_config", plan["config_name"]))
                    if n in plan.get("created", [])
                ]
            )
            raise EndpointError(name, f"deploying {plan['model_uri']} failed: {reason}", desc.status.value)
        replaced = plan.get("replaced_config")
        if replaced and replaced != plan["config_name"]:
            self.delete_config_and_models(replaced, owner=name)
        return {
            "endpoint_name": name,
            "config_name": plan["config_name"],
            "model_name": plan["model_name"],
            "model_uri": plan["model_uri"],
            "backend": self.backend_name,
            "action": plan.get("action"),
            "url": desc.url,
        }

    def delete_config_and_models(self, config_name: str, owner: str | None = None) -> None:
        """Delete an endpoint configuration and its models (only ones named after ``owner``, if given)."""
        try:
            config = self.backend.describe_endpoint_config(config_name)
        except ResourceNotFoundError:
            return
        if owner and not config_name.startswith(owner[:40]):
            self.log.info("Leaving config %s in place: it was not created for endpoint %s.", config_name, owner)
            return
        self.log.info("Deleting endpoint config %s and models %s", config_name, ", ".join(config.model_names))
        self.backend.delete_endpoint_config(config_name)
        for model in config.model_names:
            self.backend.delete_model(model)

    def delete_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        """Delete an endpoint, its configuration and its models. Absent resources are not an error."""
        try:
            desc = self.backend.describe_endpoint(endpoint_name)
        except ResourceNotFoundError:
            self.log.info("Endpoint %s does not exist; nothing to delete.", endpoint_name)
            return {"endpoint_name": endpoint_name, "deleted": False, "config_name": None}
        self.log.info("Deleting endpoint %s (config %s)", endpoint_name, desc.config_name)
        self.backend.delete_endpoint(endpoint_name)
        if desc.config_name:
            self.delete_config_and_models(desc.config_name)
        return {"endpoint_name": endpoint_name, "deleted": True, "config_name": desc.config_name}

    def sweep_endpoints(
        self, *, max_age_seconds: float | None = None, keep: list[str] | None = None, dry_run: bool = True
    ) -> list[dict[str, Any]]:
        """Delete endpoints created by this provider (by tag) older than ``max_age_seconds`` or not in ``keep``.

        :param dry_run: only report what would be deleted.
        :return: one entry per matching endpoint: name, age, reason, and whether it was deleted.
        """
        keep_set = set(keep or [])
        now = time.time()
        report = []
        for endpoint in self.backend.list_endpoints():
            if PROVIDER_TAG not in endpoint.tags:
                continue
            age = now - endpoint.created_at if endpoint.created_at else 0.0
            reasons = []
            if keep is not None and endpoint.name not in keep_set:
                reasons.append("not in the allow-list")
            if max_age_seconds is not None and age > max_age_seconds:
                reasons.append(f"older than {max_age_seconds:.0f}s")
            if not reasons:
                continue
            entry = {"endpoint_name": endpoint.name, "age_seconds": round(age, 1), "reason": " and ".join(reasons)}
            if dry_run:
                self.log.info("Dry run: would delete endpoint %s (%s)", endpoint.name, entry["reason"])
                entry["deleted"] = False
            else:
                entry["deleted"] = self.delete_endpoint(endpoint.name)["deleted"]
            report.append(entry)
        return report

    # real-time prediction ---------------------------------------------------------------------

    def invoke(
        self, endpoint_name: str, body: bytes, content_type: str = "text/csv", accept: str = "application/json"
    ) -> bytes:
        """Send one raw request to the endpoint (the SageMaker runtime contract) and return the body."""
        return self.backend.invoke_endpoint(endpoint_name, body, content_type, accept).body

    def _predict_frame(self, endpoint_name: str, data: Any) -> pd.DataFrame:
        import pandas as pd

        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_file():
                raise InvalidParameterError("data", str(data), "no such CSV file; pass a DataFrame or a CSV path.")
            data = pd.read_csv(path)
        if not hasattr(data, "to_csv") or len(data) == 0:
            raise InvalidParameterError("data", type(data).__name__, "pass a non-empty DataFrame or CSV path.")
        # Stay under the 6 MB request limit: send large frames in slices.
        body = data.to_csv(index=False).encode()
        slices = max(1, -(-len(body) // (5 * 1024 * 1024)))
        parts = []
        step = -(-len(data) // slices)
        for start in range(0, len(data), step):
            chunk = data.iloc[start : start + step]
            raw = self.invoke(endpoint_name, chunk.to_csv(index=False).encode(), "text/csv", "application/x-parquet")
            parts.append(pd.read_parquet(io.BytesIO(raw)))
        return pd.concat(parts, ignore_index=True)

    def predict_real_time(self, endpoint_name: str, data: Any) -> pd.Series:
        """Predictions for ``data`` (a DataFrame or CSV path) as a Series named after the label."""
        frame = self._predict_frame(endpoint_name, data)
        return frame.iloc[:, 0]

    def predict_proba_real_time(self, endpoint_name: str, data: Any) -> pd.DataFrame | pd.Series:
        """Class probabilities, one column per class (the predictions Series for regression)."""
        frame = self._predict_frame(endpoint_name, data)
        return split_proba(frame)

    # batch prediction -------------------------------------------------------------------------

    def start_batch_predict(
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
    ) -> TrainingSubmission:
        """Start a batch transform of ``test_data`` with ``model_uri`` (or reattach to an earlier try's)."""
        from airflow_autogluon_cloud.backends.base import TransformJobSpec

        if not naming.is_valid_name(job_name):
            raise InvalidParameterError("job_name", job_name, "use 1-63 letters, digits and hyphens.")
        if not isinstance(instance_count, int) or instance_count < 1:
            raise InvalidParameterError("instance_count", instance_count, "expected an integer >= 1.")
        self.cloud_output_path  # noqa: B018 - validates the output location before anything else
        self.check_model_uri(model_uri)
        features = self.model_summary(model_uri).get("features") or []
        prepared = self.prepare_data(test_data, "test_data", features)
        try:
            found = self._find_job(TRANSFORM, job_name)
            if isinstance(found, TrainingSubmission):
                return found
            name = found
            staged = self._stage_scoring_input(prepared, features)
        finally:
            prepared.cleanup()
        model_name = naming.derived_name(name, "model")
        self.create_model(
            model_name,
            model_uri,
            instance_type=instance_type,
            framework_version=framework_version,
            custom_image_uri=custom_image_uri,
            tags=tags,
        )
        spec = TransformJobSpec(
            name=name,
            model_name=model_name,
            input_uri=staged.uri,
            output_path=join_uri(self.cloud_output_path, "batch_transform", name),
            instance_type=instance_type,
            instance_count=instance_count,
            content_type="text/csv",
            accept="application/jsonl",
            max_runtime=max_runtime,
            environment=dict(environment or {}),
            tags={PROVIDER_TAG: "transform", **(tags or {})},
        )
        self.log.info("Creating transform job %s on the %s backend (input %s)", name, self.backend_name, staged.uri)
        try:
            self.backend.create_transform_job(spec)
        except Exception:
            self.backend.delete_model(model_name)
            raise
        return TrainingSubmission(name, JobStatus.IN_PROGRESS, reattached=False)

    def _stage_scoring_input(self, prepared: DataInput, features: list[str]) -> StagedObject:
        """Stage scoring data as CSV with exactly the model's feature columns, in training order.

        SageMaker splits the file into mini-batches whose later parts have no header line, so the
        column order must be the model's own.
        """
        if prepared.s3_uri is not None or not features or prepared.columns == features:
            if prepared.local_path is not None and prepared.local_path.name.endswith(".csv"):
                return self.stage_file(prepared.local_path, "test_data.csv")
            if prepared.s3_uri is not None:
                return StagedObject(prepared.s3_uri, 0)
        import pandas as pd

        assert prepared.local_path is not None
        path = prepared.local_path
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "test_data.csv"
            if path.name.lower().endswith((".csv", ".csv.gz")):
                # Rewritten in chunks: memory stays flat whatever the file's size.
                with open(out, "w", newline="") as fh:
                    for i, chunk in enumerate(pd.read_csv(path, chunksize=200_000)):
                        (chunk[features] if features else chunk).to_csv(fh, index=False, header=i == 0)
            else:
                frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_json(path, lines=True)
                (frame[features] if features else frame).to_csv(out, index=False)
            return self.stage_file(out, "test_data.csv")

    def batch_result(self, job_name: str) -> dict[str, Any]:
        """The small XCom dict for a transform job: output URI, input, status."""
        desc = self.backend.describe_transform_job(job_name)
        output_uri = None
        if desc.status == JobStatus.COMPLETED and desc.artifact_uri:
            source = desc.secondary_uri or ""
            output_uri = join_uri(desc.artifact_uri, source.rsplit("/", 1)[-1] + ".out")
        return {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend_name,
            "input_uri": desc.secondary_uri,
            "output_uri": output_uri,
            "model_name": desc.model_name,
        }

    def cleanup_batch_model(self, job_name: str) -> None:
        """Remove the model a transform job was created with (it exists only for that job)."""
        desc = self.backend.describe_transform_job(job_name)
        if desc.model_name and desc.model_name.startswith(job_name[:40]):
            self.backend.delete_model(desc.model_name)

    def read_predict_results(self, job_name: str) -> pd.DataFrame:
        """The transform job's output as a DataFrame: the prediction column, then ``<class>_proba`` columns."""
        import pandas as pd

        result = self.batch_result(job_name)
        if not result["output_uri"]:
            raise JobFailedError("Transform job", job_name, result["status"], "it has no results (not Completed)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.jsonl"
            self.storage(result["output_uri"]).download_file(result["output_uri"], path)
            return pd.read_json(path, lines=True)

    def download_predict_results(
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
        frame = self.read_predict_results(job_name)
        if predict_proba:
            proba = split_proba(frame)
            if include_predict and hasattr(proba, "columns"):
                proba.insert(0, frame.columns[0], frame.iloc[:, 0])
            frame = proba.to_frame() if not hasattr(proba, "columns") else proba
        else:
            frame = frame.iloc[:, [0]]
        target = Path(save_path) if save_path else self.local_root / "batch_results" / job_name
        if target.suffix != ".csv":
            target = target / "predictions.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
        return str(target)

    # info, local predictor, permissions -------------------------------------------------------

    def info(
        self, fit_job_name: str | None = None, transform_job_name: str | None = None, endpoint_name: str | None = None
    ) -> dict[str, Any]:
        """A dict like AutoGluon Cloud's ``info()``: fit job, recent transform job, transform jobs, endpoint."""
        out: dict[str, Any] = {
            "backend": self.backend_name,
            "local_output_path": str(self.local_root),
            "cloud_output_path": self.cloud_output_path,
            "fit_job": None,
            "recent_transform_job": None,
            "transform_jobs": [],
            "endpoint": None,
        }
        if fit_job_name:
            fit = self.training_result(fit_job_name)
            out["fit_job"] = {
                "name": fit_job_name,
                "status": fit["status"],
                "framework_version": fit["framework_version"],
                "artifact_path": fit["model_artifact_uri"],
            }
        jobs = sorted(
            self.backend.list_transform_jobs(name_contains=naming.NAME_PREFIX),
            key=lambda j: j.created_at or 0,
            reverse=True,
        )
        out["transform_jobs"] = [j.name for j in jobs]
        recent = transform_job_name or (jobs[0].name if jobs else None)
        if recent:
            batch = self.batch_result(recent)
            out["recent_transform_job"] = {
                "name": recent,
                "status": batch["status"],
                "result_path": batch["output_uri"],
            }
        if endpoint_name:
            try:
                desc = self.backend.describe_endpoint(endpoint_name)
                out["endpoint"] = desc.name
                out["endpoint_status"] = desc.status.value
            except ResourceNotFoundError:
                out["endpoint"] = None
        return out

    def to_local_predictor(
        self, model_uri: str, save_path: str | os.PathLike[str] | None = None, *, require_version_match: bool = True
    ) -> Any:
        """Download ``model.tar.gz``, extract it safely and load it as the right AutoGluon predictor.

        :param require_version_match: refuse a model trained with another AutoGluon version (loading
            across versions can silently misbehave); pass False to load anyway.
        """
        from airflow_autogluon_cloud.archives import safe_extract
        from airflow_autogluon_cloud.exceptions import ArtifactError

        self.check_model_uri(model_uri)
        target = (
            Path(save_path) if save_path else self.local_root / "predictors" / naming.short_hash(model_uri, length=16)
        )
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "model.tar.gz"
            self.storage(model_uri).download_file(model_uri, archive)
            safe_extract(archive, target)
        summary_path = target / "training_summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        predictor_type = summary.get("predictor_type", "tabular")
        version_file = target / "version.txt"
        trained_with = version_file.read_text().strip() if version_file.is_file() else summary.get("autogluon_version")
        installed = installed_autogluon_version()
        if require_version_match and trained_with and trained_with != installed:
            raise ArtifactError(
                f"{model_uri} was trained with AutoGluon {trained_with}, but AutoGluon {installed} is installed. "
                "Install the matching version, or pass require_version_match=False to load it anyway."
            )
        if predictor_type == "timeseries":
            from autogluon.timeseries import TimeSeriesPredictor as PredictorCls
        elif predictor_type == "multimodal":
            from autogluon.multimodal import MultiModalPredictor as PredictorCls
        else:
            from autogluon.tabular import TabularPredictor as PredictorCls
        kwargs: dict[str, Any] = {"require_py_version_match": False}
        if predictor_type != "multimodal":
            kwargs["require_version_match"] = require_version_match
        return PredictorCls.load(str(target), **kwargs)

    @staticmethod
    def generate_default_permissions(
        account_id: str, cloud_output_bucket: str, output_path: str = ".", role_name: str = "AutoGluonSageMakerRole"
    ) -> dict[str, str]:
        """Write the trust relationship and least-privilege IAM policy files; return their paths."""
        from airflow_autogluon_cloud.permissions import write_permission_files

        return write_permission_files(account_id, cloud_output_bucket, output_path, role_name)


def split_proba(frame: pd.DataFrame) -> pd.DataFrame | pd.Series:
    """Per-class probabilities from a ``[prediction, <class>_proba, ...]`` frame.

    For regression (no probability columns) this is the prediction Series, as in AutoGluon Cloud.
    """
    proba_columns = [c for c in frame.columns[1:] if str(c).endswith("_proba")]
    if not proba_columns:
        return frame.iloc[:, 0]
    proba = frame[proba_columns].copy()
    proba.columns = [str(c)[: -len("_proba")] for c in proba_columns]
    return proba


def _version_from_image(image: str) -> str | None:
    tag = image.rsplit(":", 1)[-1]
    version = tag.split("-", 1)[0]
    return version if version[:1].isdigit() else None
