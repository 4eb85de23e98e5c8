"""Operator extra links: from a task in the Airflow UI to the job or endpoint it drives.

The operator pushes the URL to XCom (under the link's key) as soon as it knows the resource's
name, before waiting, so the link works while the job is still running. For SageMaker the URL is
the AWS console page; for the local backend it is the job's log file or the endpoint's address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class _XComUrlLink(BaseOperatorLink):
    name: ClassVar[str]
    key: ClassVar[str]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        url = BaseXCom.get_value(ti_key=ti_key, key=self.key)  # type: ignore[arg-type]
        return str(url) if url else ""

    @classmethod
    def persist(cls, context: Any, url: str | None) -> None:
        if url:
            context["ti"].xcom_push(key=cls.key, value=url)


class AGTrainingJobLink(_XComUrlLink):
    """Link to the training job (SageMaker console, or the local job's log)."""

    name = "AutoGluon Training Job"
    key = "ag_training_job_url"


class AGTransformJobLink(_XComUrlLink):
    """Link to the batch transform job (SageMaker console, or the local job's log)."""

    name = "AutoGluon Batch Transform Job"
    key = "ag_transform_job_url"


class AGEndpointLink(_XComUrlLink):
    """Link to the endpoint (SageMaker console, or the local endpoint's address)."""

    name = "AutoGluon Endpoint"
    key = "ag_endpoint_url"
