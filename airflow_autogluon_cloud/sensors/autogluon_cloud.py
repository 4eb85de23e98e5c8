"""Sensors that pick up a job by name: one started without waiting, or outside Airflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, default_deferrable, raise_for_event
from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AGJobSensor(BaseSensorOperator):
    """Wait for a job by name; fail at once if it failed, was stopped, or does not exist.

    :param job_name: the job to wait for. (templated)
    :param aws_conn_id: Airflow AWS connection. (templated)
    :param region_name: AWS region, overriding the connection's. (templated)
    :param role_arn: role to assume, overriding the connection's. (templated)
    :param external_id: external id for assuming ``role_arn``. (templated)
    :param backend: ``local`` or ``sagemaker``; default ``[autogluon_cloud] backend``. (templated)
    :param cloud_output_path: artifact location, as given to the operator. (templated)
    :param local_root: the local backend's state directory. (templated)
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param max_poke_interval: ceiling of the trigger's backoff (default 4x ``poke_interval``).
    """

    kind: str
    template_fields: Sequence[str] = ("job_name", *CONNECTION_TEMPLATE_FIELDS)

    def __init__(
        self,
        *,
        job_name: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        role_arn: str | None = None,
        external_id: str | None = None,
        backend: str | None = None,
        cloud_output_path: str | None = None,
        local_root: str | None = None,
        deferrable: bool | None = None,
        max_poke_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.job_name = job_name
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.role_arn = role_arn
        self.external_id = external_id
        self.backend = backend
        self.cloud_output_path = cloud_output_path
        self.local_root = local_root
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.max_poke_interval = max_poke_interval

    @cached_property
    def hook(self) -> AutoGluonCloudHook:
        return AutoGluonCloudHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            role_arn=self.role_arn,
            external_id=self.external_id,
            backend=self.backend,
            cloud_output_path=self.cloud_output_path,
            local_root=self.local_root,
        )

    def result(self, job_name: str) -> Any:
        raise NotImplementedError

    def poke(self, context: Context) -> PokeReturnValue:
        desc = self.hook.describe_job(self.kind, self.job_name)  # ResourceNotFoundError if absent
        if not desc.status.is_terminal:
            self.log.info("%s job %s is %s.", self.kind.capitalize(), self.job_name, desc.status.value)
            return PokeReturnValue(is_done=False)
        self.hook.raise_for_status(desc)
        return PokeReturnValue(is_done=True, xcom_value=self.result(self.job_name))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=AutoGluonJobTrigger(
                kind=self.kind,
                job_name=self.job_name,
                hook_params=self.hook.hook_params(),
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = raise_for_event(event, self.kind, self.job_name)
        return self.result(event["job_name"])


class AGFitJobSensor(_AGJobSensor):
    """Wait for a training job by name and push the same XCom dict as :class:`AGFitOperator`."""

    kind = "training"

    def result(self, job_name: str) -> dict[str, Any]:
        return self.hook.training_result(job_name)
