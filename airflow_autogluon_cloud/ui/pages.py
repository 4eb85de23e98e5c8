"""What each view shows, read through the hook's services (the same code on both backends).

Every function returns plain dicts and lists for the templates; nothing here writes, except
:func:`set_status` and :func:`roll_back`, which go through the registry service as the operators do.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.backends.specs import APPROVED, REJECTED
from airflow_autogluon_cloud.exceptions import ResourceNotFoundError
from airflow_autogluon_cloud.kinds import JobKind

if TYPE_CHECKING:
    from airflow_autogluon_cloud.backends.specs import JobDescription, ModelVersion
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

#: ``airflow:<dag>/<run>/<task>``: how tasks sign what they register (operators/registry.py).
_ACTING_TASK = re.compile(r"\Aairflow:(?P<dag>[^/]+)/(?P<run>[^/]+)/(?P<task>[^/;]+)")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_INTERVAL = re.compile(rf"interval=\[(?P<lo>{_NUMBER}), (?P<hi>{_NUMBER})\]")
_CHAMPION = re.compile(rf"champion=(?P<value>{_NUMBER})")
JOB_KINDS = (JobKind.TRAINING, JobKind.EVALUATION, JobKind.TRANSFORM)
MAX_JOBS = 50
#: The Endpoints view counts each endpoint's invocations over this many seconds (the last hour).
INVOCATIONS_WINDOW = 3600


def dag_run_of(signed_by: str | None) -> dict[str, str] | None:
    """The DAG run a task-signed registry field names (``None`` for a person or anything else)."""
    match = _ACTING_TASK.match(signed_by or "")
    return match.groupdict() if match else None


def interval_of(version: ModelVersion, metric: str) -> tuple[float, float] | None:
    """Where the gate put ``metric`` for this version: the champion's score plus the improvement's
    interval, read from the audit the gate recorded (``None`` without a gate or an interval)."""
    line = (version.status_audit or {}).get(f"metric:{metric}")
    if not isinstance(line, str):
        return None
    interval, champion = _INTERVAL.search(line), _CHAMPION.search(line)
    if not interval or not champion:
        return None
    base = float(champion["value"])
    return base + float(interval["lo"]), base + float(interval["hi"])


def _version_row(version: ModelVersion) -> dict[str, Any]:
    return {
        **version.to_dict(),
        "dag_run": dag_run_of(version.registered_by) or dag_run_of(version.status_set_by),
        "evaluation_job": _evaluation_job(version),
        "audit_lines": sorted((version.status_audit or {}).items()),
    }


def _evaluation_job(version: ModelVersion) -> str | None:
    line = (version.status_audit or {}).get("evaluation")
    name = line.split(" ", 1)[0] if isinstance(line, str) else ""
    return name if name and name != "None" else None


def headline_metric(versions: list[ModelVersion]) -> str | None:
    """The metric to chart: the one the gate judged by, else the first the versions share."""
    for version in reversed(versions):
        for key in version.status_audit or {}:
            if key.startswith("metric:"):
                return key[len("metric:") :]
    names = [name for version in versions for name in version.metrics]
    return names[0] if names else None


def registry(hook: AutoGluonCloudHook, only_group: str | None = None) -> list[dict[str, Any]]:
    """Every group (or one) with its versions, newest first, and what to chart."""
    from airflow_autogluon_cloud.ui.chart import metric_chart

    groups = [only_group] if only_group else hook.registry.groups()
    out = []
    for group in groups:
        versions = hook.registry.versions(group)
        metric = headline_metric(versions)
        out.append(
            {
                "name": group,
                "metric": metric,
                "versions": [_version_row(v) for v in reversed(versions)],
                "chart": metric_chart(versions, metric, interval_of) if metric else None,
                "latest_approved": max((v.version for v in versions if v.approval_status == APPROVED), default=None),
            }
        )
    return out


def evaluation(hook: AutoGluonCloudHook, job_name: str) -> dict[str, Any]:
    """One evaluation: both models' metrics side by side, and the decisions the gate took on it."""
    result = hook.evaluation.result(job_name)
    metrics: dict[str, dict[str, Any]] = result.get("metrics") or {}
    models = sorted(metrics or result.get("model_uris") or {})
    names = sorted({name for scores in metrics.values() for name in scores})
    decisions = []
    for group in hook.registry.groups():
        for version in hook.registry.versions(group):
            if _evaluation_job(version) == job_name:
                row = _version_row(version)
                row["slice_lines"] = [(k, v) for k, v in row["audit_lines"] if k.startswith("slices:")]
                decisions.append(row)
    return {
        "result": result,
        "models": models,
        "metric_names": names,
        "table": [[name, [(metrics.get(m) or {}).get(name) for m in models]] for name in names],
        "decisions": decisions,
    }


def evaluations(hook: AutoGluonCloudHook) -> list[dict[str, Any]]:
    return [job for job in jobs(hook) if job["kind"] == str(JobKind.EVALUATION)]


def endpoints(hook: AutoGluonCloudHook) -> list[dict[str, Any]]:
    """Every endpoint the provider created: what it serves (and which registry version), its age."""
    by_uri: dict[str, ModelVersion] = {}
    for group in hook.registry.groups():
        for version in hook.registry.versions(group):
            by_uri.setdefault(version.model_uri, version)
    now = time.time()
    rows = []
    for endpoint in sorted(hook.endpoints.list_endpoints(), key=lambda e: e.name):
        try:
            serving = hook.endpoints.serving(endpoint)
        except ResourceNotFoundError:
            serving = {"model_uri": None, "instance_count": None, "serverless": False}
        served = by_uri.get(serving["model_uri"] or "")
        console = hook.console_url("endpoint", endpoint.name)
        rows.append(
            {
                "name": endpoint.name,
                "status": endpoint.status.value,
                "failure_reason": endpoint.failure_reason,
                **serving,
                "version": f"{served.group} v{served.version}" if served else None,
                "age_seconds": now - endpoint.created_at if endpoint.created_at else None,
                "invocations": hook.endpoints.invocations(endpoint.name, now - INVOCATIONS_WINDOW),
                "console_url": console if console and console.startswith(("http://", "https://")) else None,
            }
        )
    return rows


def jobs(hook: AutoGluonCloudHook) -> list[dict[str, Any]]:
    """The newest training, evaluation and transform jobs: status, duration, what they used and,
    for a transform whose data was checked, what the checks found."""
    now = time.time()
    found = [job for kind in JOB_KINDS for job in hook.jobs.list_jobs(kind)]
    found.sort(key=lambda job: job.created_at or 0, reverse=True)
    rows = []
    for listed in found[:MAX_JOBS]:
        job = _described(hook, listed)
        end = job.ended_at or (now if job.status.value in ("InProgress", "Stopping") else None)
        rows.append(
            {
                "name": job.name,
                "kind": str(job.kind),
                "status": job.status.value,
                "failure_reason": job.failure_reason,
                "created_at": job.created_at,
                "duration_seconds": end - job.created_at if end and job.created_at else None,
                "console_url": hook.console_url(str(job.kind), job.name),
                "usage": {key: value for key, value in job.usage.items() if value is not None},
                "data_checks": _data_checks(hook, job),
            }
        )
    return rows


def _described(hook: AutoGluonCloudHook, job: JobDescription) -> JobDescription:
    """The job with its usage and output: SageMaker's list calls give summaries only, so each shown
    job is described once (the local backend's listing is already complete)."""
    if job.usage:
        return job
    try:
        return hook.jobs.describe(str(job.kind), job.name)
    except ResourceNotFoundError:
        return job


def _data_checks(hook: AutoGluonCloudHook, job: JobDescription) -> dict[str, Any] | None:
    """A finished transform's data-check report summary (``None``: not a transform, or not checked)."""
    if job.kind is not JobKind.TRANSFORM or job.status.value != "Completed" or not job.artifact_uri:
        return None
    try:
        return hook.batch.monitoring.report_summary(job.artifact_uri)
    except (OSError, ValueError, ResourceNotFoundError):
        return None


def set_status(hook: AutoGluonCloudHook, group: str, version: int, status: str, user: str, reason: str) -> None:
    """Approve or reject one version as ``user`` (the registry checks the text as it does for tasks)."""
    if status not in (APPROVED, REJECTED):
        raise ValueError(status)
    hook.registry.set_approval(group, version, status, set_by=user, reason=reason or "set in the Airflow UI")


def roll_back(hook: AutoGluonCloudHook, group: str, user: str, reason: str) -> int:
    return hook.registry.rollback(group, set_by=user, reason=reason or "rolled back in the Airflow UI").version
