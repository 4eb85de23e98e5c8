"""The requests and descriptions both backends speak: plain dataclasses of strings and numbers.

Shaped after SageMaker's own API, so the local backend is a faithful stand-in, and small enough
that a trigger or a detached runner can rebuild them from primitives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.status import EndpointStatus, JobStatus

#: Channel names the training entry script understands (``SM_CHANNEL_<NAME>``).
CHANNEL_TRAIN = "train_data"
CHANNEL_TUNING = "tuning_data"
CHANNEL_CONFIG = "ag_args"
CHANNEL_CODE = "code"
#: Optional: data the training job scores with the fitted model (train and score in one job).
CHANNEL_PREDICT = "predict_data"
#: Optional: a time series' static features, one row per item (``SM_CHANNEL_STATIC_FEATURES``).
CHANNEL_STATIC = "static_features"
#: Where a training job that scored data writes it, in its output data directory (``output.tar.gz``).
FIT_PREDICTIONS_FILE = "predictions.jsonl"
#: Script names inside the code archive / the model's ``code/`` directory.
TRAIN_SCRIPT = "train.py"
SERVE_SCRIPT = "serve.py"
EVALUATE_SCRIPT = "evaluate.py"
#: Modules the entry scripts import from beside them (the predictor kinds, container side): shipped
#: with every script in ``sourcedir.tar.gz``, and copied into each model's ``code/`` by train.py.
CONTAINER_SUPPORT_MODULES = (
    "ag_kinds.py",
    "kind_tabular.py",
    "kind_timeseries.py",
    "kind_multimodal.py",
    "fast_csv.py",
    "data_profile.py",
    "data_checks.py",
)
#: The modules ``evaluate.py`` imports for its paired statistics; shipped beside it in every code archive.
PAIRED_STATS_MODULES = ("paired_stats.py", "paired_tests.py")
EVALUATION_CODE = (EVALUATE_SCRIPT, *PAIRED_STATS_MODULES)
#: A batch transform's environment: the prefix where the serving script writes one data profile per
#: request (``container/data_profile.py``); set when the job checks its data.
DATA_PROFILE_ENV = "AG_DATA_PROFILE_URI"
#: Channels of an evaluation job: the labelled data, its arguments, and one ``model_<key>`` per model.
CHANNEL_EVAL_DATA = "eval_data"
CHANNEL_EVAL_ARGS = "eval_args"
MODEL_CHANNEL_PREFIX = "model_"
#: The report an evaluation job writes to its output data directory (``output.tar.gz``).
EVALUATION_REPORT = "evaluation.json"
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
    #: The Python the local backend runs the entry script with (``None``: Airflow's); not sent to SageMaker.
    interpreter: str | None = None
    #: The script the job runs from the code channel (script mode's ``sagemaker_program``).
    entry_point: str = TRAIN_SCRIPT


@dataclass
class EvaluationJobSpec(TrainingJobSpec):
    """Score models on labelled data: a training-shaped job running ``evaluate.py``.

    ``channels`` has :data:`CHANNEL_EVAL_DATA`, :data:`CHANNEL_EVAL_ARGS`, :data:`CHANNEL_CODE`
    and one ``model_<key>`` channel per model (its ``model.tar.gz``). The report is
    :data:`EVALUATION_REPORT` in ``<output_path>/<name>/output/output.tar.gz``.
    """

    entry_point: str = EVALUATE_SCRIPT


@dataclass
class TransformJobSpec:
    """A batch transform: score every line of ``input_uri`` with ``model_name``.

    :param input_uri: staged input object (CSV with a header line).
    :param output_path: prefix the result goes under: ``<output_path>/<input file name>.out``.
    :param accept: content type of the results (the serving script's answer).
    :param split_type: ``Line`` (the input is cut into mini-batches at line ends) or ``None`` (each
        input file is one request: time series, whose items must stay whole); ``input_uri`` is
        then a prefix of one or more files, and each gets its own ``<file>.out``.
    :param batch_strategy: ``MultiRecord`` or ``SingleRecord``.
    :param assemble_with: ``Line`` or ``None``.
    """

    name: str
    model_name: str
    input_uri: str
    output_path: str
    instance_type: str
    instance_count: int = 1
    content_type: str = "text/csv"
    accept: str = "application/json"
    split_type: str = "Line"
    batch_strategy: str = "MultiRecord"
    assemble_with: str = "Line"
    max_payload_mb: int = 6
    max_runtime: int = 3600
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: The Python the local backend scores with (``None``: Airflow's); not sent to SageMaker.
    interpreter: str | None = None


@dataclass
class ModelSpec:
    """A deployable model: an artifact (``model.tar.gz`` with ``code/serve.py``) and an image."""

    name: str
    model_data_uri: str
    image_uri: str | None = None
    role_arn: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: The Python the local backend's endpoint serves with (``None``: Airflow's); not sent to SageMaker.
    interpreter: str | None = None


@dataclass
class EndpointConfigSpec:
    """One production variant (``AllTraffic``): instance-based, or serverless when ``serverless`` is set.

    :param serverless: ``memory_size_in_mb``, ``max_concurrency`` and (local backend only)
        ``idle_seconds``; the instance type and count are then not used.
    """

    name: str
    model_name: str
    instance_type: str
    instance_count: int = 1
    volume_size: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    serverless: dict[str, int] | None = None
    #: ``sampling_percentage`` and ``destination`` (``endpoint_options.data_capture``), or ``None``.
    data_capture: dict[str, Any] | None = None


@dataclass
class JobDescription:
    """What a backend knows about a training or transform job."""

    name: str
    kind: JobKind
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
    #: what the job used: ``instance_type``, ``instance_count``, ``billable_seconds`` (SageMaker),
    #: ``cpu_seconds`` and ``wall_seconds`` (local); see ``services/cost.py``.
    usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = str(self.kind)
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
    #: The variant's instances (``None`` when serverless).
    instance_count: int | None = None
    serverless: bool = False


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


@dataclass
class ImageChoice:
    """The container image a job or model runs, and the AutoGluon version it stands for.

    :param image_uri: the image (``None`` on the local backend, which runs this machine's Python).
    :param framework_version: the AutoGluon version recorded with the job.
    :param note: something the caller should tell the user (e.g. an ignored ``framework_version``).
    """

    image_uri: str | None
    framework_version: str
    note: str | None = None


#: Approval states of a registered model version (SageMaker's ``ModelApprovalStatus``).
PENDING_APPROVAL = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
APPROVAL_STATUSES = (PENDING_APPROVAL, APPROVED, REJECTED)


@dataclass
class ModelVersionSpec:
    """A model version to register in a group (a SageMaker model package group).

    :param group: the group's name (SageMaker-valid, at most 63 characters).
    :param model_uri: the ``model.tar.gz`` the version stands for.
    :param training_job: the job that produced it; with ``model_uri``, the key that makes
        registering idempotent.
    :param metrics: headline metric name -> value.
    :param dataset: what the metrics were measured on (e.g. the holdout's URI or the evaluation job).
    :param image_uri: the inference image (SageMaker's ``InferenceSpecification``).
    :param usage: what the training job used (``services/cost.py``): instance type and count,
        billable seconds (or CPU and wall seconds on this machine), the estimated cost with prices.
    """

    group: str
    model_uri: str
    training_job: str
    framework_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    dataset: str | None = None
    description: str | None = None
    image_uri: str | None = None
    approval_status: str = PENDING_APPROVAL
    registered_by: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelVersion:
    """One registered version: what it is, how it measured, and its approval (and who set it)."""

    group: str
    version: int
    model_uri: str
    training_job: str | None
    framework_version: str | None
    metrics: dict[str, float]
    dataset: str | None
    approval_status: str
    #: Who or what set the approval status last (a user, a DAG task), and why.
    status_set_by: str | None = None
    status_reason: str | None = None
    created_at: float | None = None
    #: SageMaker: the model package ARN; local: ``local:<group>/<version>``.
    arn: str | None = None
    #: The promotion gate's record of the decision (rules, scores, intervals), when a gate set it.
    status_audit: dict[str, Any] | None = None
    #: The free text given at registration, and who registered it (kept when the status changes).
    description: str | None = None
    registered_by: str | None = None
    #: What the training job used and, with prices, cost (empty when the job was not found).
    usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChampionCheckedApproval:
    """The outcome of approving a version only while the group's latest approved is the expected one.

    :param version: the version after the call (Approved, or untouched when ``conflict``).
    :param conflict: the latest approved version found instead of the expected one (``None``: no
        conflict; ``approved`` false with no conflict means no version is approved any more).
    :param approved: whether the approval was written.
    :param approved_between: versions approved by someone else between the check and the write
        (only on backends without an atomic compare-and-set: SageMaker).
    """

    version: ModelVersion
    approved: bool
    conflict: ModelVersion | None = None
    approved_between: list[int] = field(default_factory=list)
