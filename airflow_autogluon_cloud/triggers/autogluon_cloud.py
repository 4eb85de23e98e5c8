"""Triggers that wait for a training job, a transform job or an endpoint without a worker slot.

A trigger holds primitives only (names, numbers, the hook's settings as a dict), rebuilds the
hook in the triggerer, runs the blocking status calls in a thread so the event loop never
stalls, streams the job's new log lines, and yields exactly one event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_autogluon_cloud import polling

#: Event statuses. ``execute_complete`` returns only on ``success``.
SUCCESS = "success"
FAILED = "failed"
STOPPED = "stopped"
TIMEOUT = "timeout"
NOT_FOUND = "not_found"
ERROR = "error"
_CONSECUTIVE_ERRORS_ALLOWED = 5


class AutoGluonJobTrigger(BaseTrigger):
    """Wait for a training or transform job to reach a terminal state.

    :param kind: ``training`` or ``transform``.
    :param job_name: the job to follow.
    :param hook_params: :meth:`AutoGluonCloudHook.hook_params` of the hook that started it.
    :param poll_interval: seconds between the first status checks.
    :param max_poll_interval: ceiling the interval backs off to (default 4x ``poll_interval``).
    :param stream_log: whether to copy the job's new log lines into the task log.
    """

    def __init__(
        self,
        kind: str,
        job_name: str,
        hook_params: dict[str, Any],
        poll_interval: float = 30,
        max_poll_interval: float | None = None,
        stream_log: bool = True,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.job_name = job_name
        self.hook_params = hook_params
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.stream_log = stream_log

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kind": self.kind,
                "job_name": self.job_name,
                "hook_params": self.hook_params,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "stream_log": self.stream_log,
            },
        )

    def _hook(self) -> Any:
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        return AutoGluonCloudHook(**self.hook_params)

    def _event(self, status: str, message: str, job_status: str | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "kind": self.kind,
                "job_name": self.job_name,
                "job_status": job_status,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_autogluon_cloud.exceptions import ResourceNotFoundError

        hook = await asyncio.to_thread(self._hook)
        interval = float(self.poll_interval)
        ceiling = polling.max_interval(self.poll_interval, self.max_poll_interval)
        cursor: dict[str, Any] | None = None
        errors = 0
        started = time.time()
        while True:
            try:
                desc = await asyncio.to_thread(hook.describe_job, self.kind, self.job_name)
                errors = 0
            except ResourceNotFoundError as err:
                yield self._event(NOT_FOUND, str(err))
                return
            except Exception as err:
                # Transient API or database trouble: retry a few times before giving up.
                errors += 1
                self.log.warning("Checking %s failed (%d in a row): %s", self.job_name, errors, err)
                if errors >= _CONSECUTIVE_ERRORS_ALLOWED:
                    yield self._event(ERROR, f"Could not check {self.kind} job {self.job_name}: {err}")
                    return
                await asyncio.sleep(interval)
                interval = polling.next_interval(interval, ceiling)
                continue
            if self.stream_log:
                cursor = await asyncio.to_thread(hook._stream_log, self.kind, self.job_name, cursor)
            status = desc.status
            if status.is_terminal:
                if status.is_successful:
                    yield self._event(SUCCESS, f"{self.kind} job {self.job_name} completed.", status.value)
                else:
                    reason = desc.failure_reason or "no reason given"
                    tail = await asyncio.to_thread(hook.log_tail, self.kind, self.job_name, 20)
                    message = f"{reason}\nLast lines of its log:\n{tail}" if tail else reason
                    yield self._event(STOPPED if status.value == "Stopped" else FAILED, message, status.value)
                return
            deadline = polling.wait_deadline(desc.created_at, desc.max_runtime, hook.backend_name, started)
            if deadline is not None and time.time() > deadline:
                yield self._event(
                    TIMEOUT,
                    f"{self.kind} job {self.job_name} is still {status.value} past its maximum runtime.",
                    status.value,
                )
                return
            self.log.info("%s job %s is %s; next check in %.0fs", self.kind, self.job_name, status.value, interval)
            await asyncio.sleep(interval)
            interval = polling.next_interval(interval, ceiling)


class AutoGluonEndpointTrigger(BaseTrigger):
    """Wait for an endpoint to leave ``Creating``/``Updating``.

    Yields ``success`` when it is ``InService`` (the operator then checks it serves the new
    configuration), ``failed`` when it is ``Failed`` or ``OutOfService``.

    :param endpoint_name: the endpoint to follow.
    :param hook_params: :meth:`AutoGluonCloudHook.hook_params` of the hook that deployed it.
    :param poll_interval: seconds between the first status checks; backs off to ``max_poll_interval``.
    :param timeout_seconds: give up (``timeout`` event) after this long.
    """

    def __init__(
        self,
        endpoint_name: str,
        hook_params: dict[str, Any],
        poll_interval: float = 30,
        max_poll_interval: float | None = None,
        timeout_seconds: float = 3 * 3600,
    ) -> None:
        super().__init__()
        self.endpoint_name = endpoint_name
        self.hook_params = hook_params
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout_seconds = timeout_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "endpoint_name": self.endpoint_name,
                "hook_params": self.hook_params,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "timeout_seconds": self.timeout_seconds,
            },
        )

    def _event(self, status: str, message: str, endpoint_status: str | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "kind": "endpoint",
                "job_name": self.endpoint_name,
                "job_status": endpoint_status,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_autogluon_cloud.exceptions import ResourceNotFoundError
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        hook = await asyncio.to_thread(AutoGluonCloudHook, **self.hook_params)
        interval = float(self.poll_interval)
        ceiling = polling.max_interval(self.poll_interval, self.max_poll_interval)
        deadline = time.time() + self.timeout_seconds
        errors = 0
        while True:
            try:
                desc = await asyncio.to_thread(hook.backend.describe_endpoint, self.endpoint_name)
                errors = 0
            except ResourceNotFoundError as err:
                yield self._event(NOT_FOUND, str(err))
                return
            except Exception as err:
                errors += 1
                self.log.warning("Checking endpoint %s failed (%d in a row): %s", self.endpoint_name, errors, err)
                if errors >= _CONSECUTIVE_ERRORS_ALLOWED:
                    yield self._event(ERROR, f"Could not check endpoint {self.endpoint_name}: {err}")
                    return
                await asyncio.sleep(interval)
                continue
            status = desc.status
            if status.is_terminal:
                if status.is_successful:
                    yield self._event(SUCCESS, f"Endpoint {self.endpoint_name} is InService.", status.value)
                else:
                    yield self._event(FAILED, desc.failure_reason or f"endpoint is {status.value}", status.value)
                return
            if time.time() > deadline:
                yield self._event(TIMEOUT, f"Endpoint {self.endpoint_name} is still {status.value}.", status.value)
                return
            self.log.info("Endpoint %s is %s; next check in %.0fs", self.endpoint_name, status.value, interval)
            await asyncio.sleep(interval)
            interval = polling.next_interval(interval, ceiling)
