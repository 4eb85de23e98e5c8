"""What every AutoGluon operator and sensor shares: connection settings, the hook, and deferring.

:class:`AutoGluonCloudMixin` holds the connection parameters (templated), builds the hook when a
task runs, and hands a wait to the triggerer. Operators add waiting on a job in a worker
(:class:`AutoGluonCloudBaseOperator`); sensors add poking (:mod:`..sensors.autogluon_cloud`).
"""

from __future__ import annotations

import functools
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from airflow_autogluon_cloud.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobTimeoutError,
    ResourceNotFoundError,
    TriggerEventError,
)
from airflow_autogluon_cloud.kinds import JobKind

if TYPE_CHECKING:
    # The hook and the triggers are imported when a task runs, not when a DAG file is parsed.
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

__all__ = [
    "CONNECTION_TEMPLATE_FIELDS",
    "AutoGluonCloudBaseOperator",
    "AutoGluonCloudMixin",
    "raise_for_event",
]

CONNECTION_TEMPLATE_FIELDS = (
    "aws_conn_id",
    "region_name",
    "role_arn",
    "external_id",
    "backend",
    "cloud_output_path",
    "local_root",
)
#: Time a deferred task allows beyond the wait's own bound, before Airflow times it out.
_DEFER_MARGIN_SECONDS = 600


def _label(kind: str) -> str:
    try:
        return JobKind.parse(kind).label
    except ValueError:
        return kind.capitalize()


def raise_for_event(event: dict[str, Any] | None, kind: str, name: str | None) -> dict[str, Any]:
    """Return the event if it is an explicit success; otherwise raise the matching typed error."""
    from airflow_autogluon_cloud.triggers.events import FAILED, NOT_FOUND, STOPPED, TIMEOUT, WaitEvent

    if not isinstance(event, dict):
        raise TriggerEventError(f"The trigger for {kind} {name!r} returned no event ({event!r}).")
    parsed = WaitEvent.from_dict(event, kind, name)
    if parsed.is_success:
        return event
    label, message = _label(parsed.kind), parsed.message or "no message"
    if parsed.status in (FAILED, STOPPED):
        raise JobFailedError(label, parsed.name, parsed.resource_status or parsed.status.capitalize(), message)
    if parsed.status == TIMEOUT:
        raise JobTimeoutError(label, parsed.name, parsed.resource_status or "InProgress", 0)
    if parsed.status == NOT_FOUND:
        raise ResourceNotFoundError(label, parsed.name, event.get("backend", "?"), message)
    raise TriggerEventError(f"{label} {parsed.name!r}: the trigger reported {parsed.status!r}: {message}")


def _keeping_result(method: Any) -> Any:
    """``method`` that also keeps what it returns on the operator (see ``lineage_result``)."""

    @functools.wraps(method)
    def keeping(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self.lineage_result = result
        return result

    keeping._keeps_lineage_result = True  # type: ignore[attr-defined]
    return keeping


# Built by Airflow's operator metaclass, so default_args fill the mixin's parameters too.
class AutoGluonCloudMixin(metaclass=type(BaseOperator)):  # type: ignore[metaclass]
    """Connection parameters, the hook, and deferring a wait: shared by operators and sensors.

    :param aws_conn_id: Airflow AWS connection (credentials, region, ``role_arn``). (templated)
    :param region_name: AWS region, overriding the connection's. (templated)
    :param role_arn: role to assume and to run SageMaker jobs as, overriding the connection's. (templated)
    :param external_id: external id for assuming ``role_arn``. (templated)
    :param backend: ``local`` or ``sagemaker``; default ``[autogluon_cloud] backend``, else ``local``. (templated)
    :param cloud_output_path: where artifacts go: a directory or ``s3://bucket/prefix``. (templated)
    :param local_root: the local backend's state directory. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot; default
        ``[operators] default_deferrable``.
    """

    if TYPE_CHECKING:  # provided by BaseOperator, which every user of the mixin derives from
        log: Any

        def defer(self, **kwargs: Any) -> NoReturn: ...

    #: What the task returned (its XCom), kept for ``get_openlineage_facets_on_complete``: OpenLineage's
    #: listener runs in a fork of the task process, where reading the XCom back would use the
    #: supervisor's channel from a second process.
    lineage_result: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("execute", "execute_complete"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_keeps_lineage_result", False):
                setattr(cls, name, _keeping_result(method))

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        role_arn: str | None = None,
        external_id: str | None = None,
        backend: str | None = None,
        cloud_output_path: str | None = None,
        local_root: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_autogluon_cloud.settings import default_deferrable

        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.role_arn = role_arn
        self.external_id = external_id
        self.backend = backend
        self.cloud_output_path = cloud_output_path
        self.local_root = local_root
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    @cached_property
    def hook(self) -> AutoGluonCloudHook:
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        return AutoGluonCloudHook(**{name: getattr(self, name) for name in CONNECTION_TEMPLATE_FIELDS})

    def defer_to_job(
        self,
        kind: str,
        job_name: str,
        *,
        poll_interval: float,
        max_poll_interval: float | None,
        timeout: timedelta | None,
        method_name: str = "execute_complete",
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Hand the wait for a job to the triggerer; the task resumes in ``method_name`` (with ``kwargs``)."""
        from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

        self.log.info("Deferring: the triggerer waits for %s %s.", _label(kind).lower(), job_name)
        trigger = AutoGluonJobTrigger(
            kind=kind,
            job_name=job_name,
            hook_params=self.hook.hook_params(),
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            waiting_since=time.time(),
        )
        self.defer(trigger=trigger, method_name=method_name, timeout=timeout, kwargs=kwargs)

    def defer_to_endpoint(
        self,
        endpoint_name: str,
        *,
        poll_interval: float,
        max_poll_interval: float | None,
        timeout_seconds: float = 3 * 3600,
        method_name: str = "execute_complete",
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Hand the wait for an endpoint to the triggerer; the task resumes in ``method_name``."""
        from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonEndpointTrigger

        self.log.info("Deferring: the triggerer waits for endpoint %s.", endpoint_name)
        trigger = AutoGluonEndpointTrigger(
            endpoint_name=endpoint_name,
            hook_params=self.hook.hook_params(),
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout_seconds=timeout_seconds,
            waiting_since=time.time(),
        )
        self.defer(trigger=trigger, method_name=method_name, kwargs=kwargs)

    def job_timeout(self, max_runtime: int | None) -> timedelta | None:
        """How long a deferred wait for a job may take: its runtime, the backend's slack, a margin."""
        if not max_runtime:
            return None
        return timedelta(seconds=max_runtime + self.hook.wait_slack_seconds + _DEFER_MARGIN_SECONDS)


class AutoGluonCloudBaseOperator(AutoGluonCloudMixin, BaseOperator):
    """Base of the AutoGluon operators: the mixin's parameters, and how often to check a job.

    :param check_interval: seconds between status checks at first; they back off to
        ``max_check_interval`` (default four times ``check_interval``).
    :param max_check_interval: the ceiling of the backoff.
    """

    ui_color = "#d7ecff"

    def __init__(self, *, check_interval: float = 30, max_check_interval: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(check_interval, (int, float)) or check_interval <= 0:
            raise InvalidParameterError("check_interval", check_interval, "give a positive number of seconds.")
        if max_check_interval is not None and max_check_interval < check_interval:
            raise InvalidParameterError(
                "max_check_interval", max_check_interval, f"give at least check_interval ({check_interval})."
            )
        self.check_interval = check_interval
        self.max_check_interval = max_check_interval

    def wait_in_triggerer(
        self, kind: str, job_name: str, max_runtime: int | None, kwargs: dict[str, Any] | None = None
    ) -> None:
        """Defer the wait for ``job_name`` at this operator's check interval, bounded by its runtime."""
        self.defer_to_job(
            kind,
            job_name,
            poll_interval=self.check_interval,
            max_poll_interval=self.max_check_interval,
            timeout=self.job_timeout(max_runtime),
            kwargs=kwargs,
        )

    def wait_for(self, kind: str, job_name: str) -> None:
        """Wait for ``job_name`` in this worker, streaming its log; raise unless it completed."""
        self.hook.wait_for_job(
            kind, job_name, check_interval=self.check_interval, max_check_interval=self.max_check_interval
        )
