"""The event a trigger ends with, typed. ``execute_complete`` returns only on ``success``.

A module of its own so operators can read events without importing the triggers (and
``airflow.triggers.base``) at DAG-parse time. On the wire an event is a plain dict
(:meth:`WaitEvent.to_dict`), as Airflow stores trigger events as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUCCESS = "success"
FAILED = "failed"
STOPPED = "stopped"
TIMEOUT = "timeout"
NOT_FOUND = "not_found"
ERROR = "error"
STATUSES = (SUCCESS, FAILED, STOPPED, TIMEOUT, NOT_FOUND, ERROR)


@dataclass(frozen=True)
class WaitEvent:
    """How a wait ended.

    :param status: one of :data:`STATUSES`.
    :param kind: what was waited for: a job kind or ``endpoint``.
    :param name: the job or endpoint.
    :param resource_status: its last status as the backend reported it (``Failed``, ...).
    :param message: why, for a person (failure reason and log tail).
    """

    status: str
    kind: str
    name: str
    resource_status: str | None = None
    message: str = ""

    @property
    def is_success(self) -> bool:
        return self.status == SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kind": self.kind,
            "job_name": self.name,
            "job_status": self.resource_status,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any], kind: str = "", name: str | None = None) -> WaitEvent:
        """The event in ``payload``; ``kind`` and ``name`` fill in what an older payload lacks."""
        return cls(
            status=str(payload.get("status") or ""),
            kind=str(payload.get("kind") or kind),
            name=str(payload.get("job_name") or name or "?"),
            resource_status=payload.get("job_status"),
            message=str(payload.get("message") or ""),
        )
