"""The SageMaker backend: the AutoGluon containers, through :class:`~.api.SageMakerApi` (the hook's clients)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import airflow_autogluon_cloud.backends.sagemaker.usage as sm_usage
from airflow_autogluon_cloud.backends.base import (
    CHANNEL_CODE,
    PROVIDER_TAG,
    SERVE_SCRIPT,
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
from airflow_autogluon_cloud.backends.sagemaker.api import (
    SageMakerApi,
    decode_hyperparameter,
    epoch,
    error_code,
    error_message,
    tag_list,
)
from airflow_autogluon_cloud.backends.sagemaker.autoscaling import EndpointAutoscaling
from airflow_autogluon_cloud.backends.sagemaker.console import log_stream_url
from airflow_autogluon_cloud.backends.sagemaker.registry import SageMakerRegistry
from airflow_autogluon_cloud.exceptions import (
    AutoGluonCloudError,
    EndpointInvocationError,
    InvalidParameterError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.kinds import ENDPOINT, JobKind
from airflow_autogluon_cloud.status import EndpointStatus, JobStatus

if TYPE_CHECKING:
    from airflow_autogluon_cloud.aws import AwsSettings

#: Provisioning an instance and pulling the AutoGluon image can take a long time.
WAIT_SLACK_SECONDS = 3600.0

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


class SageMakerBackend(Backend):
    """Training, transform jobs and endpoints on Amazon SageMaker.

    :param client_factory: builds boto3 clients by service name (``sagemaker``,
        ``sagemaker-runtime``, ``logs``).
    :param region_name: region, for console links and the script-mode region field.
    :param sleep: how to wait between retries (injectable for tests).
    """

    name = "sagemaker"
    wait_slack_seconds = WAIT_SLACK_SECONDS
    requires_s3_uris = True
    uses_execution_role = True
    scales_endpoints = True

    def __init__(
        self,
        client_factory: Callable[[str], Any],
        region_name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = SageMakerApi(client_factory, sleep)
        self.region_name = region_name
        self.registry = SageMakerRegistry(self.api, SERVING_ENVIRONMENT)
        self.autoscaling = EndpointAutoscaling(self.api)

    @classmethod
    def from_settings(cls, *, aws: AwsSettings, local_root: Path) -> SageMakerBackend:
        return cls(aws.client, region_name=aws.resolved_region)

    def client(self, service: str = "sagemaker") -> Any:
        return self.api.client(service)

    def endpoint_invocations(self, name: str, since: float) -> int | None:
        return sm_usage.invocations_since(self.client("cloudwatch"), name, since)

    # what differs ----------------------------------------------------------------------------

    def resolve_image(
        self, scope: str, *, framework_version: str | None, custom_image_uri: str | None, instance_type: str
    ) -> ImageChoice:
        """The AWS AutoGluon container for ``scope``, or the custom image; its version."""
        from airflow_autogluon_cloud.images import image_uri, version_from_image

        image = custom_image_uri or image_uri(framework_version or "latest", scope, self.region_name, instance_type)
        return ImageChoice(image, framework_version or version_from_image(image) or "unknown")

    def console_url(self, kind: str, name: str) -> str | None:
        region = self.region_name or "us-east-1"
        page = {
            JobKind.TRAINING: "jobs",
            JobKind.EVALUATION: "jobs",
            JobKind.TRANSFORM: "transform-jobs",
            ENDPOINT: "endpoints",
        }.get(kind)
        if page is None:
            return None
        return f"https://console.aws.amazon.com/sagemaker/home?region={region}#/{page}/{quote(name, safe='')}"

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
            "sagemaker_program": spec.entry_point,
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
            "Tags": tag_list(spec.tags),
        }
        if spec.environment:
            request["Environment"] = dict(spec.environment)
        self.api.call("create_training_job", **request)

    def describe_training_job(self, name: str) -> JobDescription:
        desc = self.api.describe("describe_training_job", "Training job", name, TrainingJobName=name)
        output = desc.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
        return JobDescription(
            name=name,
            kind=JobKind.TRAINING,
            status=JobStatus.parse(desc["TrainingJobStatus"]),
            failure_reason=desc.get("FailureReason"),
            created_at=epoch(desc.get("CreationTime")),
            ended_at=epoch(desc.get("TrainingEndTime")),
            max_runtime=desc.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            artifact_uri=desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            or f"{output}/{name}/output/model.tar.gz",
            secondary_uri=f"{output}/{name}/output/output.tar.gz",
            hyperparameters={k: decode_hyperparameter(v) for k, v in (desc.get("HyperParameters") or {}).items()},
            usage=sm_usage.training_usage(desc),
        )

    def list_training_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        return self._list_jobs(JobKind.TRAINING, name_contains)

    def stop_training_job(self, name: str) -> None:
        self._stop("stop_training_job", self.describe_training_job(name), TrainingJobName=name)

    def _stop(self, operation: str, desc: JobDescription, **params: Any) -> None:
        from botocore.exceptions import ClientError

        if desc.status.is_terminal:
            return
        try:
            self.api.call(operation, **params)
        except ClientError as err:
            if error_code(err) != "ValidationException":  # already stopping or finished
                raise

    def read_training_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self._read_log(TRAINING_LOG_GROUP, name, cursor)

    def _read_log(self, group: str, name: str, cursor: dict[str, Any] | None) -> LogChunk:
        from botocore.exceptions import ClientError

        tokens = dict(cursor or {})
        lines: list[str] = []
        try:
            streams = self.api.call(
                "describe_log_streams", "logs", logGroupName=group, logStreamNamePrefix=f"{name}/"
            ).get("logStreams", [])
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":  # no log group before the first job
                return LogChunk([], tokens)
            raise
        for stream in sorted(s["logStreamName"] for s in streams):
            params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            while True:
                if stream in tokens:
                    params["nextToken"] = tokens[stream]
                page = self.api.call("get_log_events", "logs", **params)
                lines.extend(event["message"] for event in page.get("events", []))
                token = page.get("nextForwardToken")
                if not token or token == tokens.get(stream):
                    break
                tokens[stream] = token
        return LogChunk(lines, tokens)

    # evaluation: a training job running evaluate.py. A training job, not a processing job: it runs
    # the same AutoGluon training image and the same script-mode toolkit as train.py, takes each
    # model.tar.gz as an input channel, and returns the report in output.tar.gz, so one contract
    # (and one local runner) serves both.

    def create_evaluation_job(self, spec: EvaluationJobSpec) -> None:
        self.create_training_job(spec)

    def describe_evaluation_job(self, name: str) -> JobDescription:
        return dataclasses.replace(self.describe_training_job(name), kind=JobKind.EVALUATION, artifact_uri=None)

    def stop_evaluation_job(self, name: str) -> None:  # an evaluation is a training job
        self.stop_training_job(name)

    def read_evaluation_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self.read_training_log(name, cursor)

    def list_evaluation_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        jobs = self._list_jobs(JobKind.TRAINING, name_contains)
        return [dataclasses.replace(job, kind=JobKind.EVALUATION) for job in jobs]

    # batch transform ---------------------------------------------------------------------------

    def create_transform_job(self, spec: TransformJobSpec) -> None:
        request: dict[str, Any] = {
            "TransformJobName": spec.name,
            "ModelName": spec.model_name,
            "MaxConcurrentTransforms": 1,
            "MaxPayloadInMB": spec.max_payload_mb,
            "BatchStrategy": spec.batch_strategy,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_uri}},
                "ContentType": spec.content_type,
                "SplitType": spec.split_type,
                "CompressionType": "None",
            },
            "TransformOutput": {
                "S3OutputPath": spec.output_path,
                "Accept": spec.accept,
                "AssembleWith": spec.assemble_with,
            },
            "TransformResources": {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count},
            "Tags": tag_list(spec.tags),
        }
        if spec.environment:
            request["Environment"] = dict(spec.environment)
        self.api.call("create_transform_job", **request)

    def describe_transform_job(self, name: str) -> JobDescription:
        desc = self.api.describe("describe_transform_job", "Transform job", name, TransformJobName=name)
        return JobDescription(
            name=name,
            kind=JobKind.TRANSFORM,
            status=JobStatus.parse(desc["TransformJobStatus"]),
            failure_reason=desc.get("FailureReason"),
            created_at=epoch(desc.get("CreationTime")),
            ended_at=epoch(desc.get("TransformEndTime")),
            artifact_uri=desc.get("TransformOutput", {}).get("S3OutputPath"),
            secondary_uri=desc.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri"),
            model_name=desc.get("ModelName"),
            usage=sm_usage.transform_usage(desc),
        )

    def stop_transform_job(self, name: str) -> None:
        self._stop("stop_transform_job", self.describe_transform_job(name), TransformJobName=name)

    def read_transform_log(self, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self._read_log(TRANSFORM_LOG_GROUP, name, cursor)

    def list_transform_jobs(self, name_contains: str | None = None) -> list[JobDescription]:
        return self._list_jobs(JobKind.TRANSFORM, name_contains)

    def _list_jobs(self, kind: JobKind, name_contains: str | None) -> list[JobDescription]:
        """``ListTrainingJobs`` / ``ListTransformJobs``, newest first, at most 1000."""
        prefix = "Training" if kind is JobKind.TRAINING else "Transform"
        params: dict[str, Any] = {"MaxResults": 100, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if name_contains:
            params["NameContains"] = name_contains
        jobs: list[JobDescription] = []
        while True:
            page = self.api.call(f"list_{kind.value}_jobs", **params)
            for job in page.get(f"{prefix}JobSummaries", []):
                jobs.append(
                    JobDescription(
                        name=job[f"{prefix}JobName"],
                        kind=kind,
                        status=JobStatus.parse(job[f"{prefix}JobStatus"]),
                        failure_reason=job.get("FailureReason"),
                        created_at=epoch(job.get("CreationTime")),
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
        self.api.call(
            "create_model",
            ModelName=spec.name,
            PrimaryContainer={
                "Image": spec.image_uri,
                "ModelDataUrl": spec.model_data_uri,
                "Environment": {**SERVING_ENVIRONMENT, **spec.environment},
            },
            ExecutionRoleArn=spec.role_arn,
            Tags=tag_list(spec.tags),
        )

    def describe_model(self, name: str) -> ModelDescription:
        desc = self.api.describe("describe_model", "Model", name, ModelName=name)
        container = desc.get("PrimaryContainer", {})
        return ModelDescription(
            name=name,
            model_data_uri=container.get("ModelDataUrl"),
            image_uri=container.get("Image"),
            environment=container.get("Environment", {}),
        )

    def delete_model(self, name: str) -> None:
        self.api.delete("delete_model", "Model", name, ModelName=name)

    def create_endpoint_config(self, spec: EndpointConfigSpec) -> None:
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": spec.model_name}
        if spec.serverless:
            # Serverless instead of instances: no instance type, count or volume.
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": spec.serverless["memory_size_in_mb"],
                "MaxConcurrency": spec.serverless["max_concurrency"],
            }
        else:
            variant.update(InstanceType=spec.instance_type, InitialInstanceCount=spec.instance_count)
        # GPU instances (ml.p*, ml.g*) use local NVMe storage and reject a volume size.
        if spec.volume_size and not spec.serverless and not spec.instance_type.startswith(("ml.p", "ml.g")):
            variant["VolumeSizeInGB"] = spec.volume_size
        capture: dict[str, Any] = (
            {"DataCaptureConfig": sm_usage.data_capture_config(spec.data_capture)} if spec.data_capture else {}
        )
        self.api.call(
            "create_endpoint_config",
            EndpointConfigName=spec.name,
            ProductionVariants=[variant],
            Tags=tag_list(spec.tags),
            **capture,
        )

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        desc = self.api.describe("describe_endpoint_config", "Endpoint configuration", name, EndpointConfigName=name)
        variants = desc.get("ProductionVariants", [])
        serverless = any("ServerlessConfig" in v for v in variants)
        return EndpointConfigDescription(
            name=name,
            model_names=[v["ModelName"] for v in variants],
            created_at=epoch(desc.get("CreationTime")),
            instance_count=None if serverless else sum(int(v.get("InitialInstanceCount") or 0) for v in variants),
            serverless=serverless,
        )

    def delete_endpoint_config(self, name: str) -> None:
        self.api.delete("delete_endpoint_config", "Endpoint configuration", name, EndpointConfigName=name)

    # endpoints ---------------------------------------------------------------------------------

    def create_endpoint(self, name: str, config_name: str, tags: dict[str, str]) -> None:
        self.api.call("create_endpoint", EndpointName=name, EndpointConfigName=config_name, Tags=tag_list(tags))

    def update_endpoint(self, name: str, config_name: str) -> None:
        self.api.call("update_endpoint", EndpointName=name, EndpointConfigName=config_name)

    def describe_endpoint(self, name: str) -> EndpointDescription:
        desc = self.api.describe("describe_endpoint", "Endpoint", name, EndpointName=name)
        return EndpointDescription(
            name=name,
            status=EndpointStatus.parse(desc["EndpointStatus"]),
            config_name=desc.get("EndpointConfigName"),
            failure_reason=desc.get("FailureReason"),
            created_at=epoch(desc.get("CreationTime")),
        )

    def delete_endpoint(self, name: str) -> None:
        self.api.delete("delete_endpoint", "Endpoint", name, EndpointName=name)

    def describe_autoscaling(self, endpoint_name: str) -> dict[str, Any] | None:
        return self.autoscaling.describe(endpoint_name)

    def put_autoscaling(self, endpoint_name: str, policy: dict[str, Any]) -> None:
        self.autoscaling.put(endpoint_name, policy)

    def delete_autoscaling(self, endpoint_name: str) -> bool:
        return self.autoscaling.delete(endpoint_name)

    def list_endpoints(self) -> list[EndpointDescription]:
        params: dict[str, Any] = {"MaxResults": 100}
        out: list[EndpointDescription] = []
        while True:
            page = self.api.call("list_endpoints", **params)
            for endpoint in page.get("Endpoints", []):
                tags = {
                    t["Key"]: t["Value"]
                    for t in self.api.call("list_tags", ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
                }
                if PROVIDER_TAG not in tags:
                    continue
                out.append(
                    EndpointDescription(
                        name=endpoint["EndpointName"],
                        status=EndpointStatus.parse(endpoint["EndpointStatus"]),
                        created_at=epoch(endpoint.get("CreationTime")),
                        tags=tags,
                    )
                )
            if not page.get("NextToken"):
                return out
            params["NextToken"] = page["NextToken"]

    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None = None
    ) -> InvocationResult:
        from botocore.exceptions import ClientError

        extra = {"CustomAttributes": custom_attributes} if custom_attributes else {}
        try:
            response = self.api.call(
                "invoke_endpoint",
                "sagemaker-runtime",
                EndpointName=name,
                Body=body,
                ContentType=content_type,
                Accept=accept,
                **extra,
            )
        except ClientError as err:
            code = error_code(err)
            if code == "ValidationError" and "not found" in error_message(err).lower():
                raise ResourceNotFoundError("Endpoint", name, self.name) from None
            http_status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "ModelError":
                raise EndpointInvocationError(
                    name,
                    int(err.response.get("OriginalStatusCode") or http_status or 424),
                    error_message(err),
                    original_message=err.response.get("OriginalMessage"),
                    log_url=log_stream_url(err.response.get("LogStreamArn")),
                ) from None
            if isinstance(http_status, int) and http_status >= 400:
                raise EndpointInvocationError(name, http_status, f"{code}: {error_message(err)}") from None
            raise AutoGluonCloudError(f"Invoking endpoint {name!r} failed: {code}: {error_message(err)}") from err
        return InvocationResult(response["Body"].read(), response.get("ContentType", accept))
