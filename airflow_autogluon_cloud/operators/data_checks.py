"""Data checks after a batch job: what a task does with the report (warn, fail or nothing), and the
operator a DAG branches or gates on.

The report itself is made by the hook (``hook.batch.data_report``): the batch's per-request
profiles merged and compared with the model's baseline; see ``docs/data-checks.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.exceptions import DataQualityError, InvalidParameterError
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

DATA_CHECK_MODES = ("warn", "fail", "off")


def check_mode(value: Any) -> str:
    if value not in DATA_CHECK_MODES:
        raise InvalidParameterError("data_checks", value, f"use one of: {', '.join(DATA_CHECK_MODES)}.")
    return str(value)


def apply_data_checks(
    operator: Any, context: Context | None, job_name: str, mode: str, options: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Report a finished batch's checks: a warning (``warn``), a failure after the output is written
    (``fail``); the summary goes in the XCom and in the extras of the task's Asset events."""
    if mode == "off":
        return None
    report = operator.hook.batch.data_report(job_name, options)
    if report.get("violations"):
        operator.log.warning(
            "Transform job %s: %d data check violation(s) against the model's baseline: %s (%s)",
            job_name,
            report["violations"],
            "; ".join(f"{check}: {', '.join(cols)}" for check, cols in report["checks"].items()),
            report.get("violations_uri"),
        )
    else:
        operator.log.info("Transform job %s: data checks %s, no violation", job_name, report.get("status"))
    if context is not None:
        for outlet in getattr(operator, "outlets", None) or []:
            try:
                context["outlet_events"][outlet].extra["data_checks"] = _small(report)
            except Exception as err:  # an outlet that is not an Asset: nothing to annotate
                operator.log.debug("No Asset event extras for %r: %s", outlet, err)
    if mode == "fail" and report.get("violations"):
        raise DataQualityError(job_name, report)
    return _small(report)


def _small(report: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "status",
        "violations",
        "checks",
        "drifted_columns",
        "rows",
        "statistics_uri",
        "violations_uri",
        "drift_uri",
        "column_metrics",
    )
    return {k: report[k] for k in keep if k in report}


class AGDataCheckOperator(AutoGluonCloudBaseOperator):
    """Read a batch job's data checks and say whether it passed: for a branch or a gate.

    Returns the report's summary (``violations``, ``checks``: check -> columns, ``drifted_columns``,
    ``passed``). With ``fail_on_violation`` the task fails when the batch has violations of the
    checks in ``checks`` (all by default), so that downstream tasks (a retrain, say) run on
    ``trigger_rule="all_failed"`` or a branch reads ``passed`` from the XCom.

    :param job_name: the transform job (the batch-predict task's XCom ``job_name``). (templated)
    :param checks: check names that count (default: every check).
    :param columns: columns that count (default: every column).
    :param options: the checks' thresholds and switches (see ``docs/data-checks.md``).
    :param fail_on_violation: fail the task when a counted violation is found.
    """

    template_fields: Sequence[str] = (*CONNECTION_TEMPLATE_FIELDS, "job_name", "checks", "columns", "options")

    def __init__(
        self,
        *,
        job_name: str,
        checks: list[str] | None = None,
        columns: list[str] | None = None,
        options: dict[str, Any] | None = None,
        fail_on_violation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.checks = checks
        self.columns = columns
        self.options = options
        self.fail_on_violation = fail_on_violation

    def execute(self, context: Context) -> dict[str, Any]:
        report = _small(self.hook.batch.data_report(self.job_name, self.options))
        counted = {
            check: [c for c in cols if self.columns is None or c in self.columns]
            for check, cols in (report.get("checks") or {}).items()
            if self.checks is None or check in self.checks
        }
        counted = {check: cols for check, cols in counted.items() if cols}
        report["counted"] = counted
        report["passed"] = not counted
        self.log.info("Data checks of %s: %s", self.job_name, "passed" if not counted else counted)
        if counted and self.fail_on_violation:
            raise DataQualityError(self.job_name, {**report, "checks": counted, "violations": len(counted)})
        return report
