"""The IAM execution role that jobs and models run as, on backends that use one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from airflow_autogluon_cloud.backends.base import Backend
from airflow_autogluon_cloud.exceptions import InvalidParameterError


@dataclass
class ExecutionRole:
    """Says which role to pass in a job or model spec, and fails clearly when one is needed but unset.

    :param backend: decides whether a role is needed (``Backend.uses_execution_role``).
    :param arn: reads the role (the override, else the AWS connection's ``role_arn``) on first use.
    """

    backend: Backend
    arn: Callable[[], str | None]

    def __call__(self) -> str | None:
        if not self.backend.uses_execution_role:
            return None
        role = self.arn()
        if not role:
            raise InvalidParameterError(
                "role_arn",
                None,
                "SageMaker jobs need an execution role: pass role_arn or set role_arn in the AWS connection's extra.",
            )
        return role
