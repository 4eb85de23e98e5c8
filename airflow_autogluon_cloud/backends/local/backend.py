"""The embedded backend: SageMaker's resource model, run on this machine.

Training and transform jobs are detached runner processes; endpoints are HTTP server processes
serving the SageMaker inference contract (:class:`~.endpoints.LocalEndpoints`, owned by the
backend). Their records live in the SQLite state store under the backend's root, so every
process on the machine sees the same jobs and endpoints.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.backends.base import (
    Backend,
    EndpointConfigDescription,
    EndpointConfigSpec,
    EndpointDescription,
    EvaluationJobSpec,
    ImageChoice,
    InvocationResult,
    JobDescription,
    LogChunk,
    ModelDescription,
    ModelSpec,
    TrainingJobSpec,
    TransformJobSpec,
)
from airflow_autogluon_cloud.backends.local import processes
from airflow_autogluon_cloud.backends.local.endpoints import LocalEndpoints
from airflow_autogluon_cloud.backends.local.registry import LocalRegistry
from airflow_autogluon_cloud.backends.local.state import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    MODEL,
    AlreadyExistsError,
    Record,
    StateStore,
)
from airflow_autogluon_cloud.exceptions import AutoGluonCloudError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.status import JobStatus

if TYPE_CHECKING:
    from airflow_autogluon_cloud.aws import AwsSettings

log = logging.getLogger(__name__)

_ACTIVE = (JobStatus.IN_PROGRESS.value, JobStatus.STOPPING.value)
#: A job recorded but not yet given a PID is "starting" for this long before it counts as dead.
_START_GRACE_SECONDS = 120.0
_LOG_FILE = "job.log"
_MAX_LOG_READ = 1024 * 1024


class LocalBackend(Backend):
    """Runs everything as processes on this machine.

    :param root: directory for the state database, job working directories and logs.
    :param aws: settings of the AWS connection, used only when a URI is on S3.
    :param endpoint_host: address local endpoints bind to (loopback unless configured otherwise).
    """

    name = "local"
    wait_slack_seconds = 600.0

    @property
    def max_instance_count(self) -> tuple[int, str] | None:
        cores = os.cpu_count() or 1
        return cores, f"the local backend starts one server process per instance, and this machine has {cores} cores"

    def __init__(self, root: str | os.PathLike[str], aws: Any = None, endpoint_host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.store = StateStore(self.root)
        self.aws = aws
        self.endpoints = LocalEndpoints(self.store, self.root, self._aws_dict(), endpoint_host)
        self.registry = LocalRegistry(self.store)

    @classmethod
    def from_settings(cls, *, aws: AwsSettings, local_root: Path) -> LocalBackend:
        return cls(local_root, aws=aws)

    def _aws_dict(self) -> dict[str, Any] | None:
        return self.aws.to_dict() if self.aws is not None else None

    # what differs ----------------------------------------------------------------------------

    def resolve_image(
        self, scope: str, *, framework_version: str | None, custom_image_uri: str | None, instance_type: str
    ) -> ImageChoice:
        """No image: jobs run this machine's Python with the AutoGluon installed here."""
        from airflow_autogluon_cloud.images import installed_autogluon_version

        installed = installed_autogluon_version()
        note = None
        if scope == "training" and framework_version and framework_version != installed:
            note = (
                f"framework_version={framework_version} ignored on the local backend: it trains with the "
                f"installed AutoGluon {installed}."
            )
        return ImageChoice(custom_image_uri, installed, note)

    def console_url(self, kind: str, name: str) -> str | None:
        if kind == ENDPOINT:
            return self.endpoints.url(name)
        return (self.root / JobKind.parse(kind) / name / _LOG_FILE).resolve().as_uri()

    def log_tail(self, kind: str, name: str, lines: int | None = 20) -> str:
        try:
            path = self.endpoints.log_path(name) if kind == ENDPOINT else self.log_path(kind, name)
        except ResourceNotFoundError:
            return ""
        if not path.exists():
            return ""
        with open(path, "rb") as fh:
            if lines is not None:  # the last lines are in the last 64 KB
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:] if lines is not None else text.splitlines())

    def not_found_hint(self) -> str:
        """Why a job a task started can be missing here: the state is on one machine."""
        return (
            f"The local backend keeps its jobs as processes and its state in {self.store.path} on one machine: "
            "every Airflow component (workers, triggerer, scheduler) must run on that machine, or share that "
            "local_root on a common filesystem. For Airflow spread over several machines, use the sagemaker backend."
        )

    def log_path(self, kind: str, name: str) -> Path:
        record = self.store.get(kind, name)
        if record is None:
            raise ResourceNotFoundError(JobKind.parse(kind).label, name, self.name)
        return Path(record.workdir or self.root / kind / name) / _LOG_FILE

    # jobs ------------------------------------------------------------------------------------

    def describe_job(self, kind: str, name: str) -> JobDescription:
        record = self._record(kind, name)
        spec = record.data.get("spec", {})
        transform = JobKind.parse(kind) is JobKind.TRANSFORM
        return JobDescription(
            name=name,
            kind=JobKind.parse(kind),
            status=JobStatus.parse(record.status),
            failure_reason=record.failure_reason,
            created_at=record.created_at,
            ended_at=record.ended_at,
            max_runtime=spec.get("max_runtime"),
            # Same meaning as on SageMaker: a transform's output prefix and its input object.
            artifact_uri=spec.get("output_path") if transform else record.data.get("artifact_uri"),
            secondary_uri=spec.get("input_uri") if transform else record.data.get("secondary_uri"),
            hyperparameters=spec.get("hyperparameters", {}),
            model_name=spec.get("model_name"),
            # This machine bills nothing: what the job used is its CPU and wall seconds.
            usage={
                "instance_type": spec.get("instance_type"),
                "instance_count": int(spec.get("instance_count") or 1),
                "billable_seconds": None,
                **(record.data.get("usage") or {}),
            },
        )

    def list_jobs(self, kind: str, name_contains: str | None = None) -> list[JobDescription]:
        return [
            self.describe_job(kind, r.name)
            for r in self.store.list(kind)
            if not name_contains or name_contains in r.name
        ]

    def stop_job(self, kind: str, name: str) -> None:
        record = self._record(kind, name)
        if record.status not in _ACTIVE:
            return
        self.store.update(kind, name, expect_status=_ACTIVE, status=JobStatus.STOPPING.value)
        signalled = processes.terminate(record.pid, record.pid_start, grace_seconds=30)
        after = self.store.get(kind, name)
        if not signalled or (after and after.status in _ACTIVE):
            # The runner could not record the stop itself (it was already gone, or was killed).
            self.store.update(
                kind,
                name,
                expect_status=_ACTIVE,
                status=JobStatus.STOPPED.value,
                failure_reason="Stopped by request.",
                ended_at=time.time(),
            )

    def read_log(self, kind: str, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        path = self.log_path(kind, name)
        offset = int((cursor or {}).get("offset", 0))
        if not path.exists():
            return LogChunk([], {"offset": offset})
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(_MAX_LOG_READ)
        end = data.rfind(b"\n")
        if end < 0:
            return LogChunk([], {"offset": offset})
        complete = data[: end + 1]
        lines = complete.decode("utf-8", errors="replace").splitlines()
        return LogChunk(lines, {"offset": offset + len(complete)})

    def _start_job(self, kind: JobKind, name: str, spec: Any, uris: list[str]) -> None:
        workdir = self.root / kind / name
        data = {"spec": asdict(spec), "aws": self._aws_dict()}
        try:
            self.store.insert(kind, name, JobStatus.IN_PROGRESS.value, data=data, tags=spec.tags, workdir=str(workdir))
        except AlreadyExistsError:
            raise AutoGluonCloudError(f"{kind.label} {name!r} already exists on the local backend.") from None
        workdir.mkdir(parents=True, exist_ok=True)
        # A transform scores in its runner: it runs with the kind's interpreter (which then needs this
        # package too); the other runners start the entry script with it (runner.py).
        python = (getattr(spec, "interpreter", None) if isinstance(spec, TransformJobSpec) else None) or sys.executable
        argv = [python, "-m", "airflow_autogluon_cloud.backends.local.runner", str(self.root), kind, name]
        try:
            pid, start = processes.spawn_detached(
                argv, cwd=workdir, env=self._job_env(uris), log_path=workdir / _LOG_FILE
            )
        except Exception as err:
            self.store.update(kind, name, status=JobStatus.FAILED.value, failure_reason=str(err), ended_at=time.time())
            raise
        self.store.update(kind, name, pid=pid, pid_start=start)
        log.info("Started local %s %s (runner pid %s, log %s)", kind, name, pid, workdir / _LOG_FILE)

    def _job_env(self, uris: list[str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.aws is not None and any(u.startswith("s3://") for u in uris):
            env.update(self.aws.connection_env())
        return env

    def _record(self, kind: str, name: str) -> Record:
        record = self.store.get(kind, name)
        if record is None:
            raise ResourceNotFoundError(JobKind.parse(kind).label, name, self.name, self.not_found_hint())
        if record.status in _ACTIVE and not self._runner_alive(record):
            record = self._mark_dead(record)
        return record

    @staticmethod
    def _runner_alive(record: Record) -> bool:
        if record.pid is None:
            return time.time() - record.created_at < _START_GRACE_SECONDS
        return processes.is_alive(record.pid, record.pid_start)

    def _mark_dead(self, record: Record) -> Record:
        """The runner is gone but the job is recorded as running: it died. Say so, with the log."""
        tail = self.log_tail(record.kind, record.name, 15)
        reason = f"The local job runner (pid {record.pid}) exited without reporting a result."
        if tail:
            reason += " Last log lines:\n" + tail
        self.store.update(
            record.kind,
            record.name,
            expect_status=_ACTIVE,
            status=JobStatus.FAILED.value,
            failure_reason=reason,
            ended_at=time.time(),
        )
        fresh = self.store.get(record.kind, record.name)
        assert fresh is not None
        return fresh

    # training and batch transform: SageMaker's per-kind API, answered by the job methods above

    def create_training_job(self, spec: TrainingJobSpec) -> None:
        self._start_job(JobKind.TRAINING, spec.name, spec, [*spec.channels.values(), spec.output_path])

    def describe_training_job(self, name: str) -> JobDescription:
        return self.describe_job(JobKind.TRAINING, name)

    def stop_training_job(self, name: str) -> None:
        self.stop_job(JobKind.TRAINING, name)

    def read_training_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self.read_log(JobKind.TRAINING, name, cursor)

    def list_training_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        return self.list_jobs(JobKind.TRAINING, name_contains)

    def create_transform_job(self, spec: TransformJobSpec) -> None:
        model = self.describe_model(spec.model_name)
        uris = [spec.input_uri, spec.output_path, model.model_data_uri or ""]
        self._start_job(JobKind.TRANSFORM, spec.name, spec, uris)

    def describe_transform_job(self, name: str) -> JobDescription:
        return self.describe_job(JobKind.TRANSFORM, name)

    def stop_transform_job(self, name: str) -> None:
        self.stop_job(JobKind.TRANSFORM, name)

    def read_transform_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self.read_log(JobKind.TRANSFORM, name, cursor)

    def list_transform_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        return self.list_jobs(JobKind.TRANSFORM, name_contains)

    def create_evaluation_job(self, spec: EvaluationJobSpec) -> None:
        self._start_job(JobKind.EVALUATION, spec.name, spec, [*spec.channels.values(), spec.output_path])

    def describe_evaluation_job(self, name: str) -> JobDescription:
        return self.describe_job(JobKind.EVALUATION, name)

    def stop_evaluation_job(self, name: str) -> None:
        self.stop_job(JobKind.EVALUATION, name)

    def read_evaluation_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self.read_log(JobKind.EVALUATION, name, cursor)

    def list_evaluation_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        return self.list_jobs(JobKind.EVALUATION, name_contains)

    # models and endpoint configs -------------------------------------------------------------

    def create_model(self, spec: ModelSpec) -> None:
        try:
            self.store.insert(MODEL, spec.name, "Created", data=asdict(spec), tags=spec.tags)
        except AlreadyExistsError:
            raise AutoGluonCloudError(f"Model {spec.name!r} already exists on the local backend.") from None

    def describe_model(self, name: str) -> ModelDescription:
        record = self.store.get(MODEL, name)
        if record is None:
            raise ResourceNotFoundError("Model", name, self.name)
        return ModelDescription(
            name=name,
            model_data_uri=record.data.get("model_data_uri"),
            image_uri=record.data.get("image_uri"),
            environment=record.data.get("environment", {}),
        )

    def delete_model(self, name: str) -> None:
        self.store.delete(MODEL, name)

    def create_endpoint_config(self, spec: EndpointConfigSpec) -> None:
        self.describe_model(spec.model_name)
        try:
            self.store.insert(ENDPOINT_CONFIG, spec.name, "Created", data=asdict(spec), tags=spec.tags)
        except AlreadyExistsError:
            raise AutoGluonCloudError(
                f"Endpoint configuration {spec.name!r} already exists on the local backend."
            ) from None

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        record = self.store.get(ENDPOINT_CONFIG, name)
        if record is None:
            raise ResourceNotFoundError("Endpoint configuration", name, self.name)
        serverless = bool(record.data.get("serverless"))
        return EndpointConfigDescription(
            name=name,
            model_names=[record.data["model_name"]],
            created_at=record.created_at,
            instance_count=None if serverless else record.data.get("instance_count"),
            serverless=serverless,
        )

    def delete_endpoint_config(self, name: str) -> None:
        self.store.delete(ENDPOINT_CONFIG, name)

    # endpoints: served by LocalEndpoints -----------------------------------------------------

    def create_endpoint(self, name: str, config_name: str, tags: dict[str, str]) -> None:
        self.endpoints.create(name, config_name, tags)

    def update_endpoint(self, name: str, config_name: str) -> None:
        self.endpoints.update(name, config_name)

    def describe_endpoint(self, name: str) -> EndpointDescription:
        return self.endpoints.describe(name)

    def endpoint_invocations(self, name: str, since: float) -> int | None:
        """The endpoint's own counter (requests per minute since its server started); ``None`` if it
        does not answer (stopped, or restarting)."""
        import json
        import urllib.request

        from airflow_autogluon_cloud.container.local_endpoint import INVOCATIONS_PATH

        url = self.describe_endpoint(name).url
        if not url:
            return None
        try:
            with urllib.request.urlopen(f"{url}{INVOCATIONS_PATH}?since={int(since)}", timeout=10) as answer:
                return int(json.loads(answer.read())["invocations"])
        except (OSError, ValueError, KeyError):
            return None

    def delete_endpoint(self, name: str) -> None:
        self.endpoints.delete(name)

    def list_endpoints(self) -> list[EndpointDescription]:
        return self.endpoints.list()

    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None = None
    ) -> InvocationResult:
        return self.endpoints.invoke(name, body, content_type, accept, custom_attributes)
