"""The one interface both backends implement.

This is the seam where SageMaker and the local backend differ. What differs is said here, as an
attribute or a method (how long to wait past a job's runtime, whether artifacts must be on S3,
whether jobs run as an IAM role, which image a job runs, where a person looks at a resource),
so nothing above ``backends/`` ever branches on a backend's name.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_autogluon_cloud.backends.specs import (
    CHANNEL_CODE,
    CHANNEL_CONFIG,
    CHANNEL_PREDICT,
    CHANNEL_STATIC,
    CHANNEL_TRAIN,
    CHANNEL_TUNING,
    FIT_PREDICTIONS_FILE,
    PROVIDER_TAG,
    SERVE_SCRIPT,
    TRAIN_SCRIPT,
    ChampionCheckedApproval,
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
    ModelVersion,
    ModelVersionSpec,
    TrainingJobSpec,
    TransformJobSpec,
)
from airflow_autogluon_cloud.kinds import JobKind

if TYPE_CHECKING:
    from airflow_autogluon_cloud.aws import AwsSettings

__all__ = [
    "CHANNEL_CODE",
    "CHANNEL_CONFIG",
    "CHANNEL_PREDICT",
    "CHANNEL_STATIC",
    "CHANNEL_TRAIN",
    "CHANNEL_TUNING",
    "FIT_PREDICTIONS_FILE",
    "PROVIDER_TAG",
    "SERVE_SCRIPT",
    "TRAIN_SCRIPT",
    "Backend",
    "ChampionCheckedApproval",
    "EndpointConfigDescription",
    "EndpointConfigSpec",
    "EndpointDescription",
    "EvaluationJobSpec",
    "ImageChoice",
    "InvocationResult",
    "JobDescription",
    "LogChunk",
    "ModelDescription",
    "ModelSpec",
    "ModelVersion",
    "ModelVersionSpec",
    "TrainingJobSpec",
    "TransformJobSpec",
]


class ModelRegistry(Protocol):
    """Where a backend keeps model versions (the local state store, or SageMaker Model Registry)."""

    def create(self, spec: ModelVersionSpec) -> ModelVersion: ...

    def describe(self, group: str, version: int) -> ModelVersion: ...

    def versions(self, group: str, approval_status: str | None = None) -> list[ModelVersion]: ...

    def groups(self) -> list[str]: ...

    def update_approval(
        self,
        group: str,
        version: int,
        status: str,
        set_by: str,
        reason: str | None,
        audit: dict[str, Any] | None = None,
    ) -> ModelVersion: ...

    def approve_if_latest(
        self, group: str, version: int, set_by: str, reason: str, audit: dict[str, Any] | None, expected: int | None
    ) -> ChampionCheckedApproval: ...


class Backend(abc.ABC):
    """Runs jobs and endpoints somewhere: SageMaker or this machine.

    Every ``describe_*`` raises :class:`~airflow_autogluon_cloud.exceptions.ResourceNotFoundError`
    for a name that does not exist; every ``delete_*`` is idempotent (an absent resource is not an
    error); ``create_*`` raises on a name that already exists.
    """

    #: The name users configure (``[autogluon_cloud] backend``).
    name: str
    #: Seconds a wait allows past a job's own maximum runtime (provisioning, downloads, upload).
    wait_slack_seconds: float = 600.0
    #: Whether inputs, outputs and models must be ``s3://`` URIs.
    requires_s3_uris: bool = False
    #: Whether jobs and models run as an IAM execution role (passed in their specs).
    uses_execution_role: bool = False
    #: Whether endpoints scale with an autoscaling policy; without it they keep their initial count.
    scales_endpoints: bool = False

    @property
    def max_instance_count(self) -> tuple[int, str] | None:
        """The most instances an endpoint may have here, and why (``None``: the service's own limits)."""
        return None

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, *, aws: AwsSettings, local_root: Path) -> Backend:
        """The backend for a hook's AWS connection and local state root."""

    # what differs ----------------------------------------------------------------------------

    @abc.abstractmethod
    def resolve_image(
        self, scope: str, *, framework_version: str | None, custom_image_uri: str | None, instance_type: str
    ) -> ImageChoice:
        """The image a ``training`` or ``inference`` job runs, before anything is created.

        :param framework_version: the AutoGluon version asked for (``None``: the backend's default).
        """

    def console_url(self, kind: str, name: str) -> str | None:
        """Where a person can look at a resource (``kind`` is a job kind or ``endpoint``)."""
        return None

    def log_tail(self, kind: str, name: str, lines: int | None = 20) -> str:
        """The last ``lines`` lines (all with ``None``) of a job's or an endpoint's log, for messages
        and the CLI; "" when the backend has none at hand."""
        return ""

    # jobs of any kind ------------------------------------------------------------------------

    def describe_job(self, kind: str, name: str) -> JobDescription:
        return self._by_kind(
            kind, self.describe_training_job, self.describe_transform_job, self.describe_evaluation_job
        )(name)

    def stop_job(self, kind: str, name: str) -> None:
        self._by_kind(kind, self.stop_training_job, self.stop_transform_job, self.stop_evaluation_job)(name)

    def read_log(self, kind: str, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self._by_kind(kind, self.read_training_log, self.read_transform_log, self.read_evaluation_log)(
            name, cursor
        )

    def list_jobs(self, kind: str, name_contains: str | None = None) -> list[JobDescription]:
        return self._by_kind(kind, self.list_training_jobs, self.list_transform_jobs, self.list_evaluation_jobs)(
            name_contains
        )

    @staticmethod
    def _by_kind(kind: str, training: Any, transform: Any, evaluation: Any) -> Any:
        parsed = JobKind.parse(kind)
        if parsed is JobKind.EVALUATION:
            return evaluation
        return training if parsed is JobKind.TRAINING else transform

    # training
    @abc.abstractmethod
    def create_training_job(self, spec: TrainingJobSpec) -> None: ...

    @abc.abstractmethod
    def describe_training_job(self, name: str) -> JobDescription: ...

    @abc.abstractmethod
    def stop_training_job(self, name: str) -> None: ...

    @abc.abstractmethod
    def read_training_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk: ...

    @abc.abstractmethod
    def list_training_jobs(self, name_contains: str | None = None) -> list[JobDescription]: ...

    # batch transform
    @abc.abstractmethod
    def create_transform_job(self, spec: TransformJobSpec) -> None: ...

    @abc.abstractmethod
    def describe_transform_job(self, name: str) -> JobDescription: ...

    @abc.abstractmethod
    def stop_transform_job(self, name: str) -> None: ...

    @abc.abstractmethod
    def read_transform_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk: ...

    @abc.abstractmethod
    def list_transform_jobs(self, name_contains: str | None = None) -> list[JobDescription]: ...

    # evaluation: score models on labelled data (``evaluate.py`` under the training contract)
    @abc.abstractmethod
    def create_evaluation_job(self, spec: EvaluationJobSpec) -> None: ...

    @abc.abstractmethod
    def describe_evaluation_job(self, name: str) -> JobDescription: ...

    @abc.abstractmethod
    def stop_evaluation_job(self, name: str) -> None: ...

    @abc.abstractmethod
    def read_evaluation_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk: ...

    @abc.abstractmethod
    def list_evaluation_jobs(self, name_contains: str | None = None) -> list[JobDescription]: ...

    # model registry: versions in groups, each with an approval status. Each backend keeps its
    # registry in ``self.registry`` (a ModelRegistry); these methods are its face on the Backend.
    registry: ModelRegistry

    def create_model_version(self, spec: ModelVersionSpec) -> ModelVersion:
        """Register a new version in ``spec.group`` (creating the group if needed)."""
        return self.registry.create(spec)

    def describe_model_version(self, group: str, version: int) -> ModelVersion:
        return self.registry.describe(group, version)

    def list_model_versions(self, group: str, approval_status: str | None = None) -> list[ModelVersion]:
        """The group's versions, oldest first (``[]`` for a group that does not exist)."""
        return self.registry.versions(group, approval_status)

    def list_model_groups(self) -> list[str]:
        """The registry's group names, sorted."""
        return self.registry.groups()

    def update_model_approval(
        self,
        group: str,
        version: int,
        status: str,
        set_by: str,
        reason: str | None = None,
        audit: dict[str, Any] | None = None,
    ) -> ModelVersion:
        return self.registry.update_approval(group, version, status, set_by, reason, audit)

    def approve_model_if_latest(
        self, group: str, version: int, set_by: str, reason: str, audit: dict[str, Any] | None, expected: int | None
    ) -> ChampionCheckedApproval:
        """Approve ``version`` only while ``expected`` (``None``: none) is the group's latest approved
        version: atomically where the backend can (local), in the narrowest window otherwise."""
        return self.registry.approve_if_latest(group, version, set_by, reason, audit, expected)

    # models, endpoint configs, endpoints
    @abc.abstractmethod
    def create_model(self, spec: ModelSpec) -> None: ...

    @abc.abstractmethod
    def describe_model(self, name: str) -> ModelDescription: ...

    @abc.abstractmethod
    def delete_model(self, name: str) -> None: ...

    @abc.abstractmethod
    def create_endpoint_config(self, spec: EndpointConfigSpec) -> None: ...

    @abc.abstractmethod
    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription: ...

    @abc.abstractmethod
    def delete_endpoint_config(self, name: str) -> None: ...

    @abc.abstractmethod
    def create_endpoint(self, name: str, config_name: str, tags: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def update_endpoint(self, name: str, config_name: str) -> None: ...

    @abc.abstractmethod
    def describe_endpoint(self, name: str) -> EndpointDescription: ...

    @abc.abstractmethod
    def delete_endpoint(self, name: str) -> None: ...

    @abc.abstractmethod
    def list_endpoints(self) -> list[EndpointDescription]:
        """Every endpoint carrying :data:`PROVIDER_TAG`, with its tags."""

    def endpoint_invocations(self, name: str, since: float) -> int | None:
        """Requests the endpoint answered since ``since`` (epoch seconds); ``None`` when unknown
        (the idle sweep then keeps it)."""
        return None

    # endpoint autoscaling (a policy as endpoint_options.autoscaling returns it); no-ops unless
    # the backend ``scales_endpoints``
    def describe_autoscaling(self, endpoint_name: str) -> dict[str, Any] | None:
        """The endpoint's registered scaling policy, or ``None``."""
        return None

    def put_autoscaling(self, endpoint_name: str, policy: dict[str, Any]) -> None:
        """Scale the endpoint's variant with ``policy`` (register, or update, the target and policy)."""
        return None

    def delete_autoscaling(self, endpoint_name: str) -> bool:
        """Remove the endpoint's scaling (before it is deleted or updated); whether there was any."""
        return False

    @abc.abstractmethod
    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None = None
    ) -> InvocationResult:
        """One request; ``custom_attributes`` is SageMaker's CustomAttributes header (passed to the container)."""
