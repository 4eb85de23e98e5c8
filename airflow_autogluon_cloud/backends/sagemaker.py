"""The SageMaker backend: the AutoGluon deep-learning containers, driven with boto3 requests.

Clients come from the hook (the Amazon provider's AWS connection, with role assumption). Every
call retries throttling with jittered exponential backoff and nothing else; "not found" answers
become :class:`ResourceNotFoundError`; deletes are idempotent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from airflow_autogluon_cloud.backends.base import (
    CHANNEL_CODE,
    PROVIDER_TAG,
    SERVE_SCRIPT,
    TRAIN_SCRIPT,
    Backend,
    EndpointConfigDescription,
    EndpointConfigSpec,
    EndpointDescription,
    InvocationResult,
    JobDescription,
    LogChunk,
    ModelDescription,
    ModelSpec,
    TrainingJobSpec,
    TransformJobSpec,
)
from airflow_autogluon_cloud.exceptions import (
    AutoGluonCloudError,
    EndpointError,
    InvalidParameterError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.status import EndpointStatus, JobStatus

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 20.0
#: Where the training toolkit finds the code: the ``code`` input channel (works with network isolation).
SUBMIT_DIRECTORY = f"/opt/ml/input/data/{CHANNEL_CODE}/sourcedir.tar.gz"
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": SERVE_SCRIPT,
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    # AutoGluon models are large; one worker per instance avoids loading them several times.
    "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    "PYTHONUNBUFFERED": "1",
}
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _error_message(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Message", err))


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]


def _epoch(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def _decode(value: str) -> str:
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    return decoded if isinstance(decoded, str) else value


class SageMakerBackend(Backend):
    """Training, transform jobs and endpoints on Amazon SageMaker.

    :param client_factory: builds boto3 clients by service name (``sagemaker``,
        ``sagemaker-runtime``, ``logs``).
    :param region_name: region, for console links and the script-mode region field.
    :param sleep: how to wait between retries (injectable for tests).
    """

    name = "sagemaker"

    def __init__(
        self,
        client_factory: Callable[[str], Any],
        region_name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self.region_name = region_name
        self._sleep = sleep

    def client(self, service: str = "sagemaker") -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def _call(self, operation: str, service: str = "sagemaker", **params: Any) -> Any:
        """Call an API operation, retrying throttling and transient service errors only."""
        from botocore.exceptions import ClientError

        method = getattr(self.client(service), operation)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return method(**params)
            except ClientError as err:
                code = _error_code(err)
                if code not in RETRYABLE_CODES or attempt == MAX_ATTEMPTS:
                    raise
                delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                log.warning("%s throttled (%s); retry %d/%d in %.1fs", operation, code, attempt, MAX_ATTEMPTS, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _not_found(self, err: Exception, kind: str, name: str) -> bool:
        code = _error_code(err)
        message = _error_message(err).lower()
        return code in ("ValidationException", "ResourceNotFound", "ValidationError") and (
            "not found" in message or "could not find" in message or "does not exist" in message
        )

    def _describe(self, operation: str, kind: str, name: str, **params: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self._call(operation, **params)
        except ClientError as err:
            if self._not_found(err, kind, name):
                raise ResourceNotFoundError(kind, name, self.name) from None
            raise

    def _delete(self, operation: str, kind: str, name: str, **params: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(operation, **params)
            log.info("Deleted %s %s", kind.lower(), name)
        except ClientError as err:
            if not self._not_found(err, kind, name):
                raise
            log.info("%s %s is already gone", kind, name)

    # training ----------------------------------------------------------------------------------

    def create_training_job(self, spec: TrainingJobSpec) -> None:
        if not spec.image_uri:
            raise InvalidParameterError(
                "framework_version", None, "no training image: set framework_version or custom_image_uri."
            )
        if not spec.role_arn:
            raise InvalidParameterError("role_arn", None, "SageMaker needs an execution role ARN.")
        hyperparameters = {
            **spec.hyperparameters,
            "sagemaker_program": TRAIN_SCRIPT,
            "sagemaker_submit_directory": SUBMIT_DIRECTORY,
            "sagemaker_container_log_level": 20,
            "sagemaker_job_name": spec.name,
            "sagemaker_region": self.region_name or "",
        }
        request: dict[str, Any] = {
            "TrainingJobName": spec.name,
            "AlgorithmSpecification": {"TrainingImage": spec.image_uri, "TrainingInputMode": "File"},
            "RoleArn": spec.role_arn,
            # Script mode: every value JSON-encoded, as the SageMaker SDK sends them.
            "HyperParameters": {k: json.dumps(v) for k, v in sorted(hyperparameters.items())},
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "InputMode": "File",
                }
                for channel, uri in sorted(spec.channels.items())
            ],
            "OutputDataConfig": {"S3OutputPath": spec.output_path},
            "ResourceConfig": {
                "InstanceType": spec.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": spec.volume_size,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime},
            "Tags": _tags(spec.tags),
        }
        if spec.environment:
            request["Environment"] = dict(spec.environment)
        self._call("create_training_job", **request)

    def describe_training_job(self, name: str) -> JobDescription:
        desc = self._describe("describe_training_job", "Training job", name, TrainingJobName=name)
        output = desc.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
        return JobDescription(
            name=name,
            kind="training",
            status=JobStatus.parse(desc["TrainingJobStatus"]),
            failure_reason=desc.get("FailureReason"),
            created_at=_epoch(desc.get("CreationTime")),
            ended_at=_epoch(desc.get("TrainingEndTime")),
            max_runtime=desc.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            artifact_uri=desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            or f"{output}/{name}/output/model.tar.gz",
            secondary_uri=f"{output}/{name}/output/output.tar.gz",
            hyperparameters={k: _decode(v) for k, v in (desc.get("HyperParameters") or {}).items()},
        )

    def stop_training_job(self, name: str) -> None:
        self._stop("stop_training_job", self.describe_training_job(name), TrainingJobName=name)

    def _stop(self, operation: str, desc: JobDescription, **params: Any) -> None:
        from botocore.exceptions import ClientError

        if desc.status.is_terminal:
            return
        try:
            self._call(operation, **params)
        except ClientError as err:
            if _error_code(err) != "ValidationException":  # already stopping or finished
                raise

    def read_training_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self._read_log(TRAINING_LOG_GROUP, name, cursor)

    def _read_log(self, group: str, name: str, cursor: dict[str, Any] | None) -> LogChunk:
        from botocore.exceptions import ClientError

        tokens = dict(cursor or {})
        lines: list[str] = []
        try:
            streams = self._call(
                "describe_log_streams", "logs", logGroupName=group, logStreamNamePrefix=f"{name}/"
            ).get("logStreams", [])
        except ClientError as err:
            if _error_code(err) == "ResourceNotFoundException":  # no log group before the first job
                return LogChunk([], tokens)
            raise
        for stream in sorted(s["logStreamName"] for s in streams):
            params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            while True:
                if stream in tokens:
                    params["nextToken"] = tokens[stream]
                page = self._call("get_log_events", "logs", **params)
                lines.extend(event["message"] for event in page.get("events", []))
                token = page.get("nextForwardToken")
                if not token or token == tokens.get(stream):
                    break
                tokens[stream] = token
        return LogChunk(lines, tokens)

    # batch transform ---------------------------------------------------------------------------

    def create_transform_job(self, spec: TransformJobSpec) -> None:
        request: dict[str, Any] = {
            "TransformJobName": spec.name,
            "ModelName": spec.model_name,
            "MaxConcurrentTransforms": 1,
            "MaxPayloadInMB": spec.max_payload_mb,
            "BatchStrategy": "MultiRecord",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_uri}},
                "ContentType": spec.content_type,
                "SplitType": "Line",
                "CompressionType": "None",
            },
            "TransformOutput": {"S3OutputPath": spec.output_path, "Accept": spec.accept, "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count},
            "Tags": _tags(spec.tags),
        }
        if spec.environment:
            request["Environment"] = dict(spec.environment)
        self._call("create_transform_job", **request)

    def describe_transform_job(self, name: str) -> JobDescription:
        desc = self._describe("describe_transform_job", "Transform job", name, TransformJobName=name)
        return JobDescription(
            name=name,
            kind="transform",
            status=JobStatus.parse(desc["TransformJobStatus"]),
            failure_reason=desc.get("FailureReason"),
            created_at=_epoch(desc.get("CreationTime")),
            ended_at=_epoch(desc.get("TransformEndTime")),
            artifact_uri=desc.get("TransformOutput", {}).get("S3OutputPath"),
            secondary_uri=desc.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri"),
            model_name=desc.get("ModelName"),
        )

    def stop_transform_job(self, name: str) -> None:
        self._stop("stop_transform_job", self.describe_transform_job(name), TransformJobName=name)

    def read_transform_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self._read_log(TRANSFORM_LOG_GROUP, name, cursor)

    def list_transform_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        params: dict[str, Any] = {"MaxResults": 100, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if name_contains:
            params["NameContains"] = name_contains
        jobs: list[JobDescription] = []
        while True:
            page = self._call("list_transform_jobs", **params)
            for job in page.get("TransformJobSummaries", []):
                jobs.append(
                    JobDescription(
                        name=job["TransformJobName"],
                        kind="transform",
                        status=JobStatus.parse(job["TransformJobStatus"]),
                        failure_reason=job.get("FailureReason"),
                        created_at=_epoch(job.get("CreationTime")),
                    )
                )
            if not page.get("NextToken") or len(jobs) >= 1000:
                return jobs
            params["NextToken"] = page["NextToken"]

    # models and endpoint configs ---------------------------------------------------------------

    def create_model(self, spec: ModelSpec) -> None:
        if not spec.image_uri:
            raise InvalidParameterError(
                "framework_version", None, "no inference image: set framework_version or custom_image_uri."
            )
        if not spec.role_arn:
            raise InvalidParameterError("role_arn", None, "SageMaker needs an execution role ARN.")
        self._call(
            "create_model",
            ModelName=spec.name,
            PrimaryContainer={
                "Image": spec.image_uri,
                "ModelDataUrl": spec.model_data_uri,
                "Environment": {**SERVING_ENVIRONMENT, **spec.environment},
            },
            ExecutionRoleArn=spec.role_arn,
            Tags=_tags(spec.tags),
        )

    def describe_model(self, name: str) -> ModelDescription:
        desc = self._describe("describe_model", "Model", name, ModelName=name)
        container = desc.get("PrimaryContainer", {})
        return ModelDescription(
            name=name,
            model_data_uri=container.get("ModelDataUrl"),
            image_uri=container.get("Image"),
            environment=container.get("Environment", {}),
        )

    def delete_model(self, name: str) -> None:
        self._delete("delete_model", "Model", name, ModelName=name)

    def create_endpoint_config(self, spec: EndpointConfigSpec) -> None:
        variant: dict[str, Any] = {
            "VariantName": "AllTraffic",
            "ModelName": spec.model_name,
            "InstanceType": spec.instance_type,
            "InitialInstanceCount": spec.instance_count,
        }
        # GPU instances (ml.p*, ml.g*) use local NVMe storage and reject a volume size.
        if spec.volume_size and not spec.instance_type.startswith(("ml.p", "ml.g")):
            variant["VolumeSizeInGB"] = spec.volume_size
        self._call(
            "create_endpoint_config",
            EndpointConfigName=spec.name,
            ProductionVariants=[variant],
            Tags=_tags(spec.tags),
        )

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        desc = self._describe("describe_endpoint_config", "Endpoint configuration", name, EndpointConfigName=name)
        return EndpointConfigDescription(
            name=name,
            model_names=[v["ModelName"] for v in desc.get("ProductionVariants", [])],
            created_at=_epoch(desc.get("CreationTime")),
        )

    def delete_endpoint_config(self, name: str) -> None:
        self._delete("delete_endpoint_config", "Endpoint configuration", name, EndpointConfigName=name)

    # endpoints ---------------------------------------------------------------------------------

    def create_endpoint(self, name: str, config_name: str, tags: dict[str, str]) -> None:
        self._call("create_endpoint", EndpointName=name, EndpointConfigName=config_name, Tags=_tags(tags))

    def update_endpoint(self, name: str, config_name: str) -> None:
        self._call("update_endpoint", EndpointName=name, EndpointConfigName=config_name)

    def describe_endpoint(self, name: str) -> EndpointDescription:
        desc = self._describe("describe_endpoint", "Endpoint", name, EndpointName=name)
        return EndpointDescription(
            name=name,
            status=EndpointStatus.parse(desc["EndpointStatus"]),
            config_name=desc.get("EndpointConfigName"),
            failure_reason=desc.get("FailureReason"),
            created_at=_epoch(desc.get("CreationTime")),
        )

    def delete_endpoint(self, name: str) -> None:
        self._delete("delete_endpoint", "Endpoint", name, EndpointName=name)

    def list_endpoints(self) -> list[EndpointDescription]:
        params: dict[str, Any] = {"MaxResults": 100}
        out: list[EndpointDescription] = []
        while True:
            page = self._call("list_endpoints", **params)
            for endpoint in page.get("Endpoints", []):
                tags = {
                    t["Key"]: t["Value"]
                    for t in self._call("list_tags", ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
                }
                if PROVIDER_TAG not in tags:
                    continue
                out.append(
                    EndpointDescription(
                        name=endpoint["EndpointName"],
                        status=EndpointStatus.parse(endpoint["EndpointStatus"]),
                        created_at=_epoch(endpoint.get("CreationTime")),
                        tags=tags,
                    )
                )
            if not page.get("NextToken"):
                return out
            params["NextToken"] = page["NextToken"]

    def invoke_endpoint(self, name: str, body: bytes, content_type: str, accept: str) -> InvocationResult:
        from botocore.exceptions import ClientError

        try:
            response = self._call(
                "invoke_endpoint",
                "sagemaker-runtime",
                EndpointName=name,
                Body=body,
                ContentType=content_type,
                Accept=accept,
            )
        except ClientError as err:
            code = _error_code(err)
            if code == "ModelError":
                original = err.response.get("OriginalStatusCode", "?")
                message = err.response.get("OriginalMessage") or _error_message(err)
                raise EndpointError(name, f"the model answered {original}: {message}") from None
            if code == "ValidationError" and "not found" in _error_message(err).lower():
                raise ResourceNotFoundError("Endpoint", name, self.name) from None
            raise AutoGluonCloudError(f"Invoking endpoint {name!r} failed: {code}: {_error_message(err)}") from err
        return InvocationResult(response["Body"].read(), response.get("ContentType", accept))

    def console_url(self, kind: str, name: str) -> str | None:
        region = self.region_name or "us-east-1"
        page = {"training": "jobs", "transform": "transform-jobs", "endpoint": "endpoints"}.get(kind)
        if page is None:
            return None
        return f"https://console.aws.amazon.com/sagemaker/home?region={region}#/{page}/{quote(name, safe='')}"
