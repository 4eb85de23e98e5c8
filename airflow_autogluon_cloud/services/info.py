"""``info()``: one dict describing a fit job, the recent transform jobs and an endpoint, like
AutoGluon Cloud's ``CloudPredictor.info()``."""

from __future__ import annotations

from typing import Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.exceptions import ResourceNotFoundError
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.services.batch import BatchService
from airflow_autogluon_cloud.services.endpoints import EndpointService
from airflow_autogluon_cloud.services.training import TrainingService
from airflow_autogluon_cloud.settings import ProviderSettings


def info(
    settings: ProviderSettings,
    training: TrainingService,
    batch: BatchService,
    endpoints: EndpointService,
    *,
    fit_job_name: str | None = None,
    transform_job_name: str | None = None,
    endpoint_name: str | None = None,
) -> dict[str, Any]:
    """Fit job, recent transform job, transform jobs (newest first) and endpoint."""
    out: dict[str, Any] = {
        "backend": settings.backend,
        "local_output_path": str(settings.local_root),
        "cloud_output_path": settings.cloud_output_path,
        "fit_job": None,
        "recent_transform_job": None,
        "transform_jobs": [],
        "endpoint": None,
    }
    if fit_job_name:
        fit = training.result(fit_job_name)
        out["fit_job"] = {
            "name": fit_job_name,
            "status": fit["status"],
            "framework_version": fit["framework_version"],
            "artifact_path": fit["model_artifact_uri"],
            "usage": fit["usage"],
        }
    jobs = sorted(
        batch.jobs.list_jobs(JobKind.TRANSFORM, name_contains=naming.NAME_PREFIX),
        key=lambda j: j.created_at or 0,
        reverse=True,
    )
    out["transform_jobs"] = [j.name for j in jobs]
    recent = transform_job_name or (jobs[0].name if jobs else None)
    if recent:
        result = batch.result(recent)
        out["recent_transform_job"] = {
            "name": recent,
            "status": result["status"],
            "result_path": result["output_uri"],
            "usage": result["usage"],
        }
    if endpoint_name:
        try:
            desc = endpoints.describe(endpoint_name)
            out["endpoint"] = desc.name
            out["endpoint_status"] = desc.status.value
        except ResourceNotFoundError:
            out["endpoint"] = None
    return out
