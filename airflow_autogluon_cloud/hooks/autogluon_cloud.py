"""AutoGluonCloudHook: the AWS connection and the settings, in front of one service per concern.

The hook keeps the connection plumbing and builds the services in :mod:`airflow_autogluon_cloud.services`,
which do the work; its public methods are thin delegations, one API for operators, sensors and notebooks.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_autogluon_cloud.aws import AwsSettings
from airflow_autogluon_cloud.backends.registry import backend_class, create_backend
from airflow_autogluon_cloud.services.batch import BatchService
from airflow_autogluon_cloud.services.endpoints import DeployPlan, EndpointService
from airflow_autogluon_cloud.services.evaluation import EvaluationService
from airflow_autogluon_cloud.services.info import info as describe_resources
from airflow_autogluon_cloud.services.jobs import JobService, JobSubmission
from airflow_autogluon_cloud.services.models import ModelService
from airflow_autogluon_cloud.services.realtime import RealtimeService
from airflow_autogluon_cloud.services.registry import RegistryService
from airflow_autogluon_cloud.services.roles import ExecutionRole
from airflow_autogluon_cloud.services.staging import StagedObject, StagingService
from airflow_autogluon_cloud.services.training import TrainingService
from airflow_autogluon_cloud.settings import ProviderSettings, resolve_backend, resolve_local_root
from airflow_autogluon_cloud.storage import Storage, StorageLocator

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from airflow_autogluon_cloud.backends.base import Backend, EndpointDescription, JobDescription

__all__ = ["AutoGluonCloudHook", "JobSubmission", "StagedObject"]


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
        self.aws = AwsSettings(aws_conn_id, region_name, role_arn, external_id)
        name = resolve_backend(backend)
        requires_s3 = backend_class(name).requires_s3_uris
        self.settings = ProviderSettings(
            name, resolve_local_root(local_root), cloud_output_path, requires_s3=requires_s3
        )

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
            "cloud_output_path": self.settings.cloud_output_path_arg,
            "local_root": str(self.local_root),
        }

    # plumbing --------------------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        return self.settings.backend

    @property
    def local_root(self) -> Path:
        return self.settings.local_root

    @property
    def cloud_output_path(self) -> str:
        return self.settings.cloud_output_path

    @cached_property
    def backend(self) -> Backend:
        return create_backend(self.backend_name, aws=self.aws, local_root=self.local_root)

    @cached_property
    def storage_locator(self) -> StorageLocator:
        return StorageLocator(self.aws.client)

    def storage(self, uri: str) -> Storage:
        return self.storage_locator(uri)

    @property
    def wait_slack_seconds(self) -> float:
        """How long past a job's maximum runtime a wait may go on, on this backend."""
        return self.backend.wait_slack_seconds

    def console_url(self, kind: str, name: str) -> str | None:
        """Where a person looks at a job or endpoint (the SageMaker console, or the local log/address)."""
        return self.backend.console_url(kind, name)

    # services: built on first use, from the backend, storage, settings and the task log -------

    @cached_property
    def staging(self) -> StagingService:
        return StagingService(storage=self.storage_locator, settings=self.settings, log=self.log)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(backend=self.backend, log=self.log)

    @cached_property
    def _role(self) -> ExecutionRole:
        return ExecutionRole(backend=self.backend, arn=lambda: self.aws.execution_role_arn)

    @cached_property
    def training(self) -> TrainingService:
        parts = (self.backend, self.jobs, self.staging, self.storage_locator, self.settings, self._role)
        return TrainingService(*parts, log=self.log)

    @cached_property
    def models(self) -> ModelService:
        return ModelService(self.backend, self.storage_locator, self.settings, execution_role=self._role, log=self.log)

    @cached_property
    def endpoints(self) -> EndpointService:
        return EndpointService(backend=self.backend, models=self.models, settings=self.settings, log=self.log)

    @cached_property
    def realtime(self) -> RealtimeService:
        return RealtimeService(backend=self.backend)

    @cached_property
    def batch(self) -> BatchService:
        parts = (self.backend, self.jobs, self.models, self.staging, self.storage_locator, self.settings)
        return BatchService(*parts, log=self.log, training=self.training)

    @cached_property
    def evaluation(self) -> EvaluationService:  # the model lifecycle: hook.evaluation.start(...), hook.registry...
        parts = (self.backend, self.jobs, self.models, self.staging, self.storage_locator, self.settings, self._role)
        return EvaluationService(*parts, log=self.log)

    @cached_property
    def registry(self) -> RegistryService:
        return RegistryService(backend=self.backend, models=self.models, log=self.log, settings=self.settings)

    monitoring = property(lambda self: self.batch.monitoring)  # data checks against the model's baseline

    # staging ---------------------------------------------------------------------------------

    def stage_file(self, path: str | os.PathLike[str], filename: str | None = None) -> StagedObject:
        return self.staging.stage_file(path, filename)

    def stage_data(self, data: Any, parameter: str, required_columns: list[str] | None = None) -> StagedObject:
        return self.staging.stage_data(data, parameter, required_columns)

    # jobs and training (see TrainingService.start and JobService.wait for the parameters) ------

    def start_training(self, **kwargs: Any) -> JobSubmission:
        return self.training.start(**kwargs)

    def describe_job(self, kind: str, name: str) -> JobDescription:
        return self.jobs.describe(kind, name)

    def stop_job(self, kind: str, name: str) -> None:
        self.jobs.stop(kind, name)

    def stream_log(self, kind: str, name: str, cursor: dict[str, Any] | None) -> dict[str, Any] | None:
        return self.jobs.stream_log(kind, name, cursor)

    def log_tail(self, kind: str, name: str, lines: int | None = 20) -> str:
        return self.jobs.log_tail(kind, name, lines)

    def wait_for_job(self, kind: str, name: str, **kwargs: Any) -> JobDescription:
        return self.jobs.wait(kind, name, **kwargs)

    def raise_for_status(self, desc: JobDescription) -> None:
        self.jobs.raise_for_status(desc)

    def get_leaderboard(self, job_name: str) -> pd.DataFrame:
        return self.training.leaderboard(job_name)

    def training_result(self, job_name: str) -> dict[str, Any]:
        return self.training.result(job_name)

    # models ----------------------------------------------------------------------------------

    def to_local_predictor(self, model_uri: str, save_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        return self.models.to_local_predictor(model_uri, save_path, **kwargs)

    # endpoints (see EndpointService for the parameters) ------------------------------------------

    def start_deploy(self, **kwargs: Any) -> dict[str, Any]:
        """The deploy plan as a dict: it travels through a deferral to :meth:`finish_deploy`."""
        return self.endpoints.start_deploy(**kwargs).to_dict()

    def finish_deploy(self, plan: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.finish_deploy(DeployPlan.from_dict(plan))

    def describe_endpoint(self, endpoint_name: str) -> EndpointDescription:
        return self.endpoints.describe(endpoint_name)

    def wait_for_endpoint(self, endpoint_name: str, **kwargs: Any) -> EndpointDescription:
        return self.endpoints.wait(endpoint_name, **kwargs)

    def delete_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        return self.endpoints.delete(endpoint_name)

    def sweep_endpoints(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self.endpoints.sweep(**kwargs)

    # real-time and batch prediction (see RealtimeService and BatchService; both take predict_kwargs) ----

    def invoke(self, endpoint_name: str, body: bytes, *args: Any, **kwargs: Any) -> bytes:
        return self.realtime.invoke(endpoint_name, body, *args, **kwargs)

    def predict_real_time(self, endpoint_name: str, data: Any, **kwargs: Any) -> pd.Series:
        return self.realtime.predict(endpoint_name, data, **kwargs)

    def predict_proba_real_time(self, endpoint_name: str, data: Any, **kwargs: Any) -> pd.DataFrame | pd.Series:
        return self.realtime.predict_proba(endpoint_name, data, **kwargs)

    def forecast_real_time(self, endpoint_name: str, history: Any, **kwargs: Any) -> pd.DataFrame:
        return self.realtime.forecast(endpoint_name, history, **kwargs)  # known_covariates=, static_features=

    def start_batch_predict(self, **kwargs: Any) -> JobSubmission:
        return self.batch.start(**kwargs)

    def batch_result(self, job_name: str) -> dict[str, Any]:
        return self.batch.result(job_name)

    def cleanup_batch_model(self, job_name: str) -> None:
        self.batch.cleanup_model(job_name)

    def read_predict_results(self, job_name: str) -> pd.DataFrame:
        return self.batch.read_results(job_name)

    def download_predict_results(
        self, job_name: str, save_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> str:
        return self.batch.download_results(job_name, save_path, **kwargs)

    # info and permissions --------------------------------------------------------------------

    def info(
        self, fit_job_name: str | None = None, transform_job_name: str | None = None, endpoint_name: str | None = None
    ) -> dict[str, Any]:
        """A dict like AutoGluon Cloud's ``info()``: fit job, recent transform job, transform jobs, endpoint."""
        names = {"fit_job_name": fit_job_name, "transform_job_name": transform_job_name, "endpoint_name": endpoint_name}
        return describe_resources(self.settings, self.training, self.batch, self.endpoints, **names)

    @staticmethod
    def generate_default_permissions(
        account_id: str, cloud_output_bucket: str, output_path: str = ".", role_name: str = "AutoGluonSageMakerRole"
    ) -> dict[str, str]:
        """Write the trust relationship and least-privilege IAM policy files; return their paths."""
        from airflow_autogluon_cloud.permissions import write_permission_files

        return write_permission_files(account_id, cloud_output_bucket, output_path, role_name)
