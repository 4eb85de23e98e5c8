"""Sensors that pick up a job by name: one started without waiting, or outside Airflow."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, default_deferrable, raise_for_event

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook


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

    In poke and reschedule mode the interval backs off too (``exponential_backoff`` defaults to
    True, ``max_wait`` to four times ``poke_interval``); pass them to change that.
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
        # Poke and reschedule modes back off like the triggers do: up to 4x the poke interval.
        kwargs.setdefault("exponential_backoff", True)
        poke = kwargs["poke_interval"]
        poke_seconds = poke.total_seconds() if isinstance(poke, timedelta) else float(poke)
        kwargs.setdefault("max_wait", timedelta(seconds=4 * poke_seconds))
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
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

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
        from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

        self.defer(
            trigger=AutoGluonJobTrigger(
                kind=self.kind,
                job_name=self.job_name,
                hook_params=self.hook.hook_params(),
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poke_interval,
                waiting_since=time.time(),
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


class AGBatchPredictJobSensor(_AGJobSensor):
    """Wait for a batch transform job by name and push the same XCom dict as the batch operator."""

    kind = "transform"

    def result(self, job_name: str) -> dict[str, Any]:
        return self.hook.batch_result(job_name)


class AGEndpointSensor(_AGJobSensor):
    """Wait for an endpoint to be in service; fail clearly if it failed or does not exist.

    :param endpoint_name: the endpoint (or the deploy task's XCom dict). (templated)
    """

    kind = "endpoint"
    template_fields: Sequence[str] = ("endpoint_name", *CONNECTION_TEMPLATE_FIELDS)

    def __init__(self, *, endpoint_name: Any, **kwargs: Any) -> None:
        super().__init__(job_name="", **kwargs)
        self.endpoint_name = endpoint_name

    @property
    def _name(self) -> str:
        value = self.endpoint_name
        return str(value.get("endpoint_name")) if isinstance(value, dict) else str(value)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_autogluon_cloud.exceptions import EndpointError

        desc = self.hook.backend.describe_endpoint(self._name)
        if desc.status.is_successful:
            return PokeReturnValue(is_done=True, xcom_value=self.result(self._name))
        if desc.status.is_terminal:
            raise EndpointError(self._name, desc.failure_reason or "it is not in service", desc.status.value)
        self.log.info("Endpoint %s is %s.", self._name, desc.status.value)
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return BaseSensorOperator.execute(self, context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonEndpointTrigger

        self.defer(
            trigger=AutoGluonEndpointTrigger(
                endpoint_name=self._name,
                hook_params=self.hook.hook_params(),
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poke_interval,
                timeout_seconds=self.timeout or 3 * 3600,
                waiting_since=time.time(),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        from airflow_autogluon_cloud.exceptions import EndpointError

        if not event or event.get("status") != "success":
            raise EndpointError(self._name, (event or {}).get("message") or f"trigger event {event!r}")
        return self.result(self._name)

    def result(self, job_name: str) -> dict[str, Any]:
        desc = self.hook.backend.describe_endpoint(job_name)
        return {
            "endpoint_name": desc.name,
            "status": desc.status.value,
            "config_name": desc.config_name,
            "url": desc.url,
        }
