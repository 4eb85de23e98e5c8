"""Job and endpoint states, shared by the hook, operators, sensors and triggers.

The values are SageMaker's own strings; the local backend reports the same ones, so nothing above
the backend layer needs to know which backend it is talking to.
"""

from __future__ import annotations

from airflow_autogluon_cloud.vocabulary import Vocabulary


class JobStatus(Vocabulary):
    """State of a training or transform job. A stopped job is *not* a success."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    __noun__ = "job status"

    @property
    def is_terminal(self) -> bool:
        return self in JOB_TERMINAL

    @property
    def is_successful(self) -> bool:
        return self in JOB_SUCCESS


JOB_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED})
JOB_SUCCESS = frozenset({JobStatus.COMPLETED})


class EndpointStatus(Vocabulary):
    """State of an endpoint. ``InService`` is the only state that serves requests."""

    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    OUT_OF_SERVICE = "OutOfService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"

    __noun__ = "endpoint status"

    @property
    def is_terminal(self) -> bool:
        return self in ENDPOINT_TERMINAL

    @property
    def is_successful(self) -> bool:
        return self is EndpointStatus.IN_SERVICE


ENDPOINT_TERMINAL = frozenset(
    {
        EndpointStatus.IN_SERVICE,
        EndpointStatus.FAILED,
        EndpointStatus.OUT_OF_SERVICE,
        EndpointStatus.UPDATE_ROLLBACK_FAILED,
    }
)
