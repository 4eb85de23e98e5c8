"""Sensors that pick up a job or an endpoint by name: one started without waiting, or outside Airflow."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_autogluon_cloud.exceptions import EndpointError
from airflow_autogluon_cloud.kinds import ENDPOINT, JobKind
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudMixin, raise_for_event

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AGSensor(AutoGluonCloudMixin, BaseSensorOperator):
    """Poke, or defer to the triggerer; back off in poke and reschedule mode too.

    :param max_poke_interval: ceiling of the trigger's backoff (default 4x ``poke_interval``).

    In poke and reschedule mode the interval backs off like the triggers do
    (``exponential_backoff`` defaults to True, ``max_wait`` to four times ``poke_interval``);
    pass them to change that.
    """

    def __init__(self, *, max_poke_interval: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        kwargs.setdefault("exponential_backoff", True)
        poke = kwargs["poke_interval"]
        poke_seconds = poke.total_seconds() if isinstance(poke, timedelta) else float(poke)
        kwargs.setdefault("max_wait", timedelta(seconds=4 * poke_seconds))
        super().__init__(**kwargs)
        self.max_poke_interval = max_poke_interval

    @abc.abstractmethod
    def poke(self, context: Context) -> PokeReturnValue:
        """One look: done (with the XCom value), or not yet; raises if it can never succeed."""

    @abc.abstractmethod
    def defer_wait(self) -> None:
        """Hand the rest of the wait to the triggerer."""

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer_wait()


class _AGJobSensor(_AGSensor):
    """Wait for a job by name; fail at once if it failed, was stopped, or does not exist.

    :param job_name: the job to wait for. (templated)
    """

    kind: JobKind
    template_fields: Sequence[str] = ("job_name", *CONNECTION_TEMPLATE_FIELDS)

    def __init__(self, *, job_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name

    @abc.abstractmethod
    def result(self, job_name: str) -> Any:
        """The XCom value once the job completed."""

    def poke(self, context: Context) -> PokeReturnValue:
        desc = self.hook.describe_job(self.kind, self.job_name)  # ResourceNotFoundError if absent
        if not desc.status.is_terminal:
            self.log.info("%s %s is %s.", self.kind.label, self.job_name, desc.status.value)
            return PokeReturnValue(is_done=False)
        self.hook.raise_for_status(desc)
        return PokeReturnValue(is_done=True, xcom_value=self.result(self.job_name))

    def defer_wait(self) -> None:
        self.defer_to_job(
            self.kind,
            self.job_name,
            poll_interval=self.poke_interval,
            max_poll_interval=self.max_poke_interval,
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = raise_for_event(event, self.kind, self.job_name)
        return self.result(event["job_name"])


class AGFitJobSensor(_AGJobSensor):
    """Wait for a training job by name and push the same XCom dict as :class:`AGFitOperator`."""

    kind = JobKind.TRAINING

    def result(self, job_name: str) -> dict[str, Any]:
        return self.hook.training_result(job_name)


class AGBatchPredictJobSensor(_AGJobSensor):
    """Wait for a batch transform job by name and push the same XCom dict as the batch operator."""

    kind = JobKind.TRANSFORM

    def result(self, job_name: str) -> dict[str, Any]:
        return self.hook.batch_result(job_name)


class AGEndpointSensor(_AGSensor):
    """Wait for an endpoint to be in service; fail clearly if it failed or does not exist.

    :param endpoint_name: the endpoint (or the deploy task's XCom dict). (templated)
    """

    template_fields: Sequence[str] = ("endpoint_name", *CONNECTION_TEMPLATE_FIELDS)

    def __init__(self, *, endpoint_name: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name

    @property
    def _name(self) -> str:
        value = self.endpoint_name
        return str(value.get("endpoint_name")) if isinstance(value, dict) else str(value)

    def poke(self, context: Context) -> PokeReturnValue:
        desc = self.hook.describe_endpoint(self._name)
        if desc.status.is_successful:
            return PokeReturnValue(is_done=True, xcom_value=self.result())
        if desc.status.is_terminal:
            raise EndpointError(self._name, desc.failure_reason or "it is not in service", desc.status.value)
        self.log.info("Endpoint %s is %s.", self._name, desc.status.value)
        return PokeReturnValue(is_done=False)

    def defer_wait(self) -> None:
        self.defer_to_endpoint(
            self._name,
            poll_interval=self.poke_interval,
            max_poll_interval=self.max_poke_interval,
            timeout_seconds=self.timeout or 3 * 3600,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        from airflow_autogluon_cloud.triggers.events import WaitEvent

        waited = WaitEvent.from_dict(event if isinstance(event, dict) else {}, ENDPOINT, self._name)
        if not waited.is_success:
            raise EndpointError(self._name, waited.message or f"trigger event {event!r}", waited.resource_status)
        return self.result()

    def result(self) -> dict[str, Any]:
        desc = self.hook.describe_endpoint(self._name)
        return {
            "endpoint_name": desc.name,
            "status": desc.status.value,
            "config_name": desc.config_name,
            "url": desc.url,
        }
