"""What every AutoGluon operator shares: connection settings, the hook, and waiting on a job."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf

from airflow_autogluon_cloud import polling
from airflow_autogluon_cloud.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobTimeoutError,
    ResourceNotFoundError,
    TriggerEventError,
)
from airflow_autogluon_cloud.triggers.events import FAILED, NOT_FOUND, STOPPED, SUCCESS, TIMEOUT

if TYPE_CHECKING:
    # The hook and the triggers are imported when a task runs, not when a DAG file is parsed.
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

CONNECTION_TEMPLATE_FIELDS = (
    "aws_conn_id",
    "region_name",
    "role_arn",
    "external_id",
    "backend",
    "cloud_output_path",
    "local_root",
)
_KIND_LABEL = {"training": "Training job", "transform": "Transform job"}


def default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def raise_for_event(event: dict[str, Any] | None, kind: str, name: str | None) -> dict[str, Any]:
    """Return the event if it is an explicit success; otherwise raise the matching typed error."""
    if not isinstance(event, dict):
        raise TriggerEventError(f"The trigger for {kind} {name!r} returned no event ({event!r}).")
    status = event.get("status")
    job = event.get("job_name") or name or "?"
    message = event.get("message") or "no message"
    if status == SUCCESS:
        return event
    label = _KIND_LABEL.get(kind, kind)
    if status in (FAILED, STOPPED):
        raise JobFailedError(label, job, event.get("job_status") or status.capitalize(), message)
    if status == TIMEOUT:
        raise JobTimeoutError(label, job, event.get("job_status") or "InProgress", 0)
    if status == NOT_FOUND:
        raise ResourceNotFoundError(label, job, event.get("backend", "?"), message)
    raise TriggerEventError(f"{label} {job!r}: the trigger reported {status!r}: {message}")


class AutoGluonCloudBaseOperator(BaseOperator):
    """Base of the AutoGluon operators.

    :param aws_conn_id: Airflow AWS connection (credentials, region, ``role_arn``). (templated)
    :param region_name: AWS region, overriding the connection's. (templated)
    :param role_arn: role to assume and to run SageMaker jobs as, overriding the connection's. (templated)
    :param external_id: external id for assuming ``role_arn``. (templated)
    :param backend: ``local`` or ``sagemaker``; default ``[autogluon_cloud] backend``, else ``local``. (templated)
    :param cloud_output_path: where artifacts go: a directory or ``s3://bucket/prefix``. (templated)
    :param local_root: the local backend's state directory. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot; default
        ``[operators] default_deferrable``.
    :param check_interval: seconds between status checks at first; they back off to
        ``max_check_interval`` (default four times ``check_interval``).
    """

    ui_color = "#d7ecff"

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
        check_interval: float = 30,
        max_check_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(check_interval, (int, float)) or check_interval <= 0:
            raise InvalidParameterError("check_interval", check_interval, "give a positive number of seconds.")
        if max_check_interval is not None and max_check_interval < check_interval:
            raise InvalidParameterError(
                "max_check_interval", max_check_interval, f"give at least check_interval ({check_interval})."
            )
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.role_arn = role_arn
        self.external_id = external_id
        self.backend = backend
        self.cloud_output_path = cloud_output_path
        self.local_root = local_root
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.check_interval = check_interval
        self.max_check_interval = max_check_interval

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

    def defer_to_job(self, kind: str, job_name: str, max_runtime: int | None) -> None:
        """Hand the wait to the triggerer; the task resumes in ``execute_complete``."""
        from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

        timeout = None
        if max_runtime:
            slack = polling.SAGEMAKER_WAIT_SLACK_SECONDS if self.hook.backend_name == "sagemaker" else 600
            timeout = timedelta(seconds=max_runtime + slack + 600)
        self.log.info("Deferring: the triggerer waits for %s job %s.", kind, job_name)
        self.defer(
            trigger=AutoGluonJobTrigger(
                kind=kind,
                job_name=job_name,
                hook_params=self.hook.hook_params(),
                poll_interval=self.check_interval,
                max_poll_interval=self.max_check_interval,
                waiting_since=time.time(),
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def wait_for(self, kind: str, job_name: str) -> None:
        self.hook.wait_for_job(
            kind, job_name, check_interval=self.check_interval, max_check_interval=self.max_check_interval
        )
