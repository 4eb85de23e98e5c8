"""Triggers that wait for a training job, a transform job or an endpoint without a worker slot.

A trigger holds primitives only (names, numbers, the hook's settings as a dict), rebuilds the
hook in the triggerer, runs the blocking status calls in a thread so the event loop never
stalls, streams a job's new log lines, and yields exactly one event.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_autogluon_cloud import polling
from airflow_autogluon_cloud.kinds import ENDPOINT, JobKind
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.triggers.events import ERROR, FAILED, NOT_FOUND, STOPPED, SUCCESS, TIMEOUT, WaitEvent

__all__ = [
    "ERROR",
    "FAILED",
    "NOT_FOUND",
    "STOPPED",
    "SUCCESS",
    "TIMEOUT",
    "AutoGluonEndpointTrigger",
    "AutoGluonJobTrigger",
]
_CONSECUTIVE_ERRORS_ALLOWED = 5


class _PollingTrigger(BaseTrigger):
    """The loop both triggers share: check, back off, tolerate a few transient errors, one event.

    Subclasses say how to check (:meth:`check`), returning an event to finish with or ``None`` to
    keep waiting, and name what they wait for in :attr:`label`.
    """

    kind: str
    name: str
    hook_params: dict[str, Any]
    poll_interval: float
    max_poll_interval: float | None
    #: Epoch seconds the wait began (set by the operator when it defers). The backoff and the
    #: timeouts count from it, so a trigger rebuilt after a triggerer restart carries on where
    #: it was instead of polling fast again.
    waiting_since: float | None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self.arguments()

    @abc.abstractmethod
    def arguments(self) -> dict[str, Any]:
        """The primitives this trigger is rebuilt from (its constructor's keyword arguments)."""

    def _hook(self) -> Any:
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        return AutoGluonCloudHook(**self.hook_params)

    def _event(self, status: str, message: str, resource_status: str | None = None) -> TriggerEvent:
        return TriggerEvent(WaitEvent(status, str(self.kind), self.name, resource_status, message).to_dict())

    @abc.abstractmethod
    async def check(self, hook: Any, started: float) -> TriggerEvent | None:
        """One status check: the event to finish with, or ``None`` to keep waiting."""

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_autogluon_cloud.exceptions import ResourceNotFoundError

        hook = await asyncio.to_thread(self._hook)
        if self.waiting_since is None:
            self.waiting_since = time.time()
        started = self.waiting_since
        ceiling = polling.max_interval(self.poll_interval, self.max_poll_interval)
        interval = polling.interval_after(time.time() - started, self.poll_interval, ceiling)
        errors = 0
        while True:
            try:
                event = await self.check(hook, started)
                errors = 0
            except ResourceNotFoundError as err:
                yield self._event(NOT_FOUND, str(err))
                return
            except Exception as err:
                # Transient API or database trouble: retry a few times before giving up.
                errors += 1
                self.log.warning("Checking %s failed (%d in a row): %s", self.label, errors, err)
                if errors >= _CONSECUTIVE_ERRORS_ALLOWED:
                    yield self._event(ERROR, f"Could not check {self.label}: {err}")
                    return
                event = None
            if event is not None:
                yield event
                return
            await asyncio.sleep(interval)
            interval = polling.next_interval(interval, ceiling)


class AutoGluonJobTrigger(_PollingTrigger):
    """Wait for a training or transform job to reach a terminal state.

    :param kind: ``training`` or ``transform``.
    :param job_name: the job to follow.
    :param hook_params: :meth:`AutoGluonCloudHook.hook_params` of the hook that started it.
    :param poll_interval: seconds between the first status checks.
    :param max_poll_interval: ceiling the interval backs off to (default 4x ``poll_interval``).
    :param stream_log: whether to copy the job's new log lines into the task log.
    :param waiting_since: epoch seconds the wait began; the backoff resumes from there.
    """

    kind: JobKind

    def __init__(
        self,
        kind: str,
        job_name: str,
        hook_params: dict[str, Any],
        poll_interval: float = 30,
        max_poll_interval: float | None = None,
        stream_log: bool = True,
        waiting_since: float | None = None,
    ) -> None:
        super().__init__()
        self.kind = JobKind.parse(kind)
        self.name = self.job_name = job_name
        self.hook_params = hook_params
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.stream_log = stream_log
        self.waiting_since = waiting_since
        self._cursor: dict[str, Any] | None = None

    def arguments(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "job_name": self.job_name,
            "hook_params": self.hook_params,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "stream_log": self.stream_log,
            "waiting_since": self.waiting_since,
        }

    async def check(self, hook: Any, started: float) -> TriggerEvent | None:
        desc = await asyncio.to_thread(hook.describe_job, self.kind, self.job_name)
        if self.stream_log:
            self._cursor = await asyncio.to_thread(hook.stream_log, self.kind, self.job_name, self._cursor)
        status = desc.status
        if status.is_terminal:
            if status.is_successful:
                return self._event(SUCCESS, f"{self.label} completed.", status.value)
            reason = desc.failure_reason or "no reason given"
            tail = await asyncio.to_thread(hook.log_tail, self.kind, self.job_name, 20)
            message = f"{reason}\nLast lines of its log:\n{tail}" if tail else reason
            return self._event(STOPPED if status == JobStatus.STOPPED else FAILED, message, status.value)
        deadline = polling.wait_deadline(desc.created_at, desc.max_runtime, hook.wait_slack_seconds, started)
        if deadline is not None and time.time() > deadline:
            return self._event(TIMEOUT, f"{self.label} is still {status.value} past its maximum runtime.", status.value)
        self.log.info("%s %s is %s", self.kind.label, self.job_name, status.value)
        return None


class AutoGluonEndpointTrigger(_PollingTrigger):
    """Wait for an endpoint to leave ``Creating``/``Updating``.

    Yields ``success`` when it is ``InService`` (the operator then checks it serves the new
    configuration), ``failed`` when it is ``Failed`` or ``OutOfService``.

    :param endpoint_name: the endpoint to follow.
    :param hook_params: :meth:`AutoGluonCloudHook.hook_params` of the hook that deployed it.
    :param poll_interval: seconds between the first status checks; backs off to ``max_poll_interval``.
    :param timeout_seconds: give up (``timeout`` event) this long after ``waiting_since``.
    :param waiting_since: epoch seconds the wait began; the backoff and the timeout count from it.
    """

    kind = ENDPOINT

    def __init__(
        self,
        endpoint_name: str,
        hook_params: dict[str, Any],
        poll_interval: float = 30,
        max_poll_interval: float | None = None,
        timeout_seconds: float = 3 * 3600,
        waiting_since: float | None = None,
    ) -> None:
        super().__init__()
        self.name = self.endpoint_name = endpoint_name
        self.hook_params = hook_params
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout_seconds = timeout_seconds
        self.waiting_since = waiting_since

    def arguments(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "hook_params": self.hook_params,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "timeout_seconds": self.timeout_seconds,
            "waiting_since": self.waiting_since,
        }

    async def check(self, hook: Any, started: float) -> TriggerEvent | None:
        desc = await asyncio.to_thread(hook.describe_endpoint, self.endpoint_name)
        status = desc.status
        if status.is_terminal:
            if status.is_successful:
                return self._event(SUCCESS, f"Endpoint {self.endpoint_name} is InService.", status.value)
            return self._event(FAILED, desc.failure_reason or f"endpoint is {status.value}", status.value)
        if time.time() - started > self.timeout_seconds:
            return self._event(TIMEOUT, f"Endpoint {self.endpoint_name} is still {status.value}.", status.value)
        self.log.info("Endpoint %s is %s", self.endpoint_name, status.value)
        return None
