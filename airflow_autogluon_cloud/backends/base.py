"""The one interface both backends implement.

This is the seam where SageMaker and the local backend differ; nothing above it (hook, operators,
sensors, triggers) branches on the backend's name. Requests and descriptions are plain
dataclasses of strings and numbers, shaped after SageMaker's own API, so the local backend is a
faithful stand-in and a trigger can rebuild a backend from primitives.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_autogluon_cloud.status import EndpointStatus, JobStatus

#: Channel names the training entry script understands (``SM_CHANNEL_<NAME>``).
CHANNEL_TRAIN = "train_data"
CHANNEL_TUNING = "tuning_data"
CHANNEL_CONFIG = "ag_args"
CHANNEL_CODE = "code"
#: Script names inside the code archive / the model's ``code/`` directory.
TRAIN_SCRIPT = "train.py"
SERVE_SCRIPT = "serve.py"
#: Tag every resource created by this provider carries; the sweep finds endpoints by it.
PROVIDER_TAG = "airflow-autogluon-cloud"


@dataclass
class TrainingJobSpec:
    """Everything needed to start one training job, on either backend.

    :param name: job name (SageMaker-valid, at most 63 characters).
    :param channels: channel name -> URI of a staged object prefix (``s3://...`` or a local path).
        Always has :data:`CHANNEL_TRAIN`, :data:`CHANNEL_CONFIG` and :data:`CHANNEL_CODE`.
    :param output_path: prefix the artifacts go under: ``<output_path>/<name>/output/model.tar.gz``.
    :param hyperparameters: string values passed to the entry script (SageMaker script mode).
    """

    name: str
    channels: dict[str, str]
    output_path: str
    hyperparameters: dict[str, str]
    instance_type: str
    volume_size: int
    max_runtime: int
    image_uri: str | None = None
    role_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class TransformJobSpec:
    """A batch transform: score every line of ``input_uri`` with ``model_name``.

    :param input_uri: staged input object (CSV with a header line).
    :param output_path: prefix the result goes under: ``<output_path>/<input file name>.out``.
    :param accept: content type of the results (the serving script's answer).
    """

    name: str
    model_name: str
    input_uri: str
    output_path: str
    instance_type: str
    instance_count: int = 1
    content_type: str = "text/csv"
    accept: str = "application/json"
    max_payload_mb: int = 6
    max_runtime: int = 3600
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelSpec:
    """A deployable model: an artifact (``model.tar.gz`` with ``code/serve.py``) and an image."""

    name: str
    model_data_uri: str
    image_uri: str | None = None
    role_arn: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class EndpointConfigSpec:
    name: str
    model_name: str
    instance_type: str
    instance_count: int = 1
    volume_size: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class JobDescription:
    """What a backend knows about a training or transform job."""

    name: str
    kind: str  # "training" | "transform"
    status: JobStatus
    failure_reason: str | None = None
    created_at: float | None = None  # epoch seconds
    ended_at: float | None = None
    max_runtime: int | None = None
    #: training: ``.../model.tar.gz``; transform: the output prefix.
    artifact_uri: str | None = None
    #: training: ``.../output.tar.gz`` (leaderboard, summary); transform: the input URI.
    secondary_uri: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    model_name: str | None = None  # transform jobs

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass
class EndpointDescription:
    name: str
    status: EndpointStatus
    config_name: str | None = None
    failure_reason: str | None = None
    created_at: float | None = None
    #: local backend: ``http://127.0.0.1:<port>``; SageMaker: ``None`` (use sagemaker-runtime).
    url: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class EndpointConfigDescription:
    name: str
    model_names: list[str]
    created_at: float | None = None


@dataclass
class ModelDescription:
    name: str
    model_data_uri: str | None
    image_uri: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class InvocationResult:
    body: bytes
    content_type: str


@dataclass
class LogChunk:
    """New log lines since ``cursor``; pass the returned cursor back to continue."""

    lines: list[str]
    cursor: dict[str, Any]


class Backend(abc.ABC):
    """Runs jobs and endpoints somewhere: SageMaker or this machine.

    Every ``describe_*`` raises :class:`~airflow_autogluon_cloud.exceptions.ResourceNotFoundError`
    for a name that does not exist; every ``delete_*`` is idempotent (an absent resource is not an
    error); ``create_*`` raises on a name that already exists.
    """

    name: str

    # training
    @abc.abstractmethod
    def create_training_job(self, spec: TrainingJobSpec) -> None: ...

    @abc.abstractmethod
    def describe_training_job(self, name: str) -> JobDescription: ...

    @abc.abstractmethod
    def stop_training_job(self, name: str) -> None: ...

    @abc.abstractmethod
    def read_training_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk: ...

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

    @abc.abstractmethod
    def invoke_endpoint(self, name: str, body: bytes, content_type: str, accept: str) -> InvocationResult: ...

    def console_url(self, kind: str, name: str) -> str | None:
        """Where a person can look at a resource (``kind`` is training, transform or endpoint)."""
        return None
