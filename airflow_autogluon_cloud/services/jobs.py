"""Jobs of any kind: find the one an earlier try started, describe, stop, read logs, wait.

Waiting is bounded by the job's own maximum runtime plus the backend's slack, never by a fixed
number of polls; status checks back off from the check interval to a ceiling (:mod:`.polling`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_autogluon_cloud import naming, polling
from airflow_autogluon_cloud.backends.base import Backend, JobDescription, LogChunk
from airflow_autogluon_cloud.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobTimeoutError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.status import JobStatus

#: Fresh attempts (``<name>-r1``, ``-r2``, ...) tried after earlier jobs under a name failed.
MAX_GENERATIONS = 20


@dataclass
class JobSubmission:
    """The job a task is following, and whether it was started now or found from an earlier try."""

    job_name: str
    status: JobStatus
    reattached: bool


@dataclass
class JobService:
    """Job control on one backend.

    :param backend: where the jobs run.
    :param log: where progress and job log lines are reported (the task log).
    """

    backend: Backend
    log: TaskLog

    def describe(self, kind: str, name: str) -> JobDescription:
        return self.backend.describe_job(kind, name)

    def list_jobs(self, kind: str, name_contains: str | None = None) -> list[JobDescription]:
        return self.backend.list_jobs(kind, name_contains)

    def stop(self, kind: str, name: str) -> None:
        self.log.info("Stopping %s %s", JobKind.parse(kind).label.lower(), name)
        self.backend.stop_job(kind, name)

    def read_log(self, kind: str, name: str, cursor: dict[str, Any] | None = None) -> LogChunk:
        return self.backend.read_log(kind, name, cursor)

    def log_tail(self, kind: str, name: str, lines: int | None = 20) -> str:
        return self.backend.log_tail(kind, name, lines)

    def stream_log(self, kind: str, name: str, cursor: dict[str, Any] | None) -> dict[str, Any] | None:
        """Copy the job's new log lines into our log; return the cursor to continue from."""
        try:
            chunk = self.read_log(kind, name, cursor)
        except Exception as err:  # logs are a convenience; never fail a job because of them
            self.log.debug("Could not read the log of %s: %s", name, err)
            return cursor
        for line in chunk.lines:
            self.log.info("[%s] %s", name, line)
        return dict(chunk.cursor)

    def raise_for_status(self, desc: JobDescription) -> None:
        """Raise :class:`JobFailedError` unless the job completed."""
        if desc.status.is_successful:
            return
        raise JobFailedError(
            JobKind.parse(desc.kind).label,
            desc.name,
            desc.status.value,
            desc.failure_reason,
            self.log_tail(desc.kind, desc.name),
        )

    def find(self, kind: str, base: str) -> JobSubmission | str:
        """The job to follow (one an earlier try started) or the first free name for a new job.

        For ``base`` and its generations: an ``InProgress`` job is reattached to, a ``Completed``
        one is reused, and a failed or stopped one is skipped, so a fresh job starts under the
        next free name.
        """
        label = JobKind.parse(kind).label
        for generation in range(MAX_GENERATIONS):
            name = naming.generation_name(base, generation)
            try:
                desc = self.describe(kind, name)
            except ResourceNotFoundError:
                return name
            if desc.status == JobStatus.IN_PROGRESS:
                self.log.info("%s %s is already running (started by an earlier try); reattaching.", label, name)
                return JobSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.COMPLETED:
                self.log.info("%s %s already completed (an earlier try); reusing its result.", label, name)
                return JobSubmission(name, desc.status, reattached=True)
            if desc.status == JobStatus.STOPPING:
                self.wait(kind, name, check_interval=5, stream_log=False, raise_on_failure=False)
            self.log.info(
                "%s %s ended as %s (%s); starting a fresh job under a new name.",
                label,
                name,
                desc.status.value,
                desc.failure_reason or "no reason given",
            )
        raise InvalidParameterError(
            "job_name", base, f"{MAX_GENERATIONS} jobs under this name already failed; pick a new job_name."
        )

    def deadline(self, desc: JobDescription, started: float) -> float | None:
        """Wall-clock time past which ``desc`` cannot still be legitimately running."""
        return polling.wait_deadline(desc.created_at, desc.max_runtime, self.backend.wait_slack_seconds, started)

    def wait(
        self,
        kind: str,
        name: str,
        *,
        check_interval: float = 30,
        max_check_interval: float | None = None,
        stream_log: bool = True,
        raise_on_failure: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> JobDescription:
        """Block until the job ends, streaming its log into ours; the final description."""
        label = JobKind.parse(kind).label
        interval = float(check_interval)
        ceiling = polling.max_interval(check_interval, max_check_interval)
        cursor: dict[str, Any] | None = None
        started = time.time()
        while True:
            desc = self.describe(kind, name)
            if stream_log:
                cursor = self.stream_log(kind, name, cursor)
            if desc.status.is_terminal:
                if raise_on_failure:
                    self.raise_for_status(desc)
                return desc
            deadline = self.deadline(desc, started)
            if deadline is not None and time.time() > deadline:
                raise JobTimeoutError(label, name, desc.status.value, time.time() - started)
            self.log.info("%s %s is %s; next check in %.0fs", label, name, desc.status.value, interval)
            sleep(interval)
            interval = polling.next_interval(interval, ceiling)
