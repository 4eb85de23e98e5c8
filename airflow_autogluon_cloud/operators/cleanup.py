"""AGCleanupOperator: remove endpoints (with their configs and models), one by name or by sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGCleanupOperator(AutoGluonCloudBaseOperator):
    """Delete an endpoint, its configuration and its models; or sweep stale endpoints.

    Idempotent: a resource that is already gone is not an error, so it is safe as a teardown task
    (``AGCleanupOperator(...).as_teardown(setups=deploy)``), which runs even when upstream fails.

    Sweep mode deletes every endpoint created by this provider (found by its tag) that is older
    than ``max_age``, that had no invocation in the last ``idle_for`` (CloudWatch's ``Invocations`` on
    SageMaker, the endpoint's own counter locally) or, when ``keep`` is given, not in it.
    ``dry_run`` only reports.

    :param endpoint_name: the endpoint, or the deploy task's XCom dict. (templated)
    :param sweep: sweep instead of deleting one endpoint.
    :param max_age: sweep endpoints older than this (a timedelta, or seconds). (templated)
    :param idle_for: sweep endpoints up this long without an invocation in it (a timedelta, or
        seconds). (templated)
    :param keep: sweep every endpoint not named here (a list, or its JSON/Python literal). (templated)
    :param dry_run: report what would be deleted, delete nothing. (templated, as ``report_only``)
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "endpoint_name",
        "max_age",
        "keep",
        "report_only",
        "idle_for",
    )

    def __init__(
        self,
        *,
        endpoint_name: Any = None,
        sweep: bool = False,
        max_age: timedelta | float | None = None,
        keep: list[str] | None = None,
        dry_run: bool | str = False,
        idle_for: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not sweep and endpoint_name is None:
            raise InvalidParameterError("endpoint_name", None, "name the endpoint to delete, or set sweep=True.")
        if sweep and max_age is None and keep is None and idle_for is None:
            raise InvalidParameterError(
                "max_age", None, "a sweep needs max_age, idle_for and/or keep, or it would delete every endpoint."
            )
        self.endpoint_name = endpoint_name
        self.sweep = sweep
        self.max_age = max_age
        self.keep = keep
        self.idle_for = idle_for
        # ``BaseOperator.dry_run`` is a method, so the flag lives under another attribute.
        self.report_only = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        flag = self.report_only
        dry_run = flag if isinstance(flag, bool) else str(flag).strip().lower() in ("true", "1", "yes")
        if self.sweep:
            report = self.hook.sweep_endpoints(
                max_age_seconds=_seconds(self.max_age),
                keep=_names(self.keep),
                dry_run=dry_run,
                idle_for=_seconds(self.idle_for, "idle_for"),
            )
            self.log.info("Sweep%s: %d endpoint(s) matched.", " (dry run)" if dry_run else "", len(report))
            for entry in report:
                self.log.info(
                    "  %s: %s%s", entry["endpoint_name"], entry["reason"], "" if entry["deleted"] else " (kept)"
                )
            return {"dry_run": dry_run, "endpoints": report}
        name = self.endpoint_name.get("endpoint_name") if isinstance(self.endpoint_name, dict) else self.endpoint_name
        if not name:
            raise InvalidParameterError("endpoint_name", self.endpoint_name, "expected an endpoint name.")
        if dry_run:
            self.log.info("Dry run: would delete endpoint %s", name)
            return {"endpoint_name": name, "deleted": False, "dry_run": True}
        return self.hook.delete_endpoint(name)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the endpoints deleted."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.cleanup(self, task_instance)


def _seconds(value: Any, parameter: str = "max_age") -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(parameter, value, "give a timedelta or a number of seconds.") from None


def _names(value: Any) -> list[str] | None:
    """A list of endpoint names; a rendered template arrives as its string form."""
    if value is None:
        return None
    if isinstance(value, str):
        import ast

        try:
            value = ast.literal_eval(value) if value.strip() else []
        except (ValueError, SyntaxError):
            value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple, set)):
        raise InvalidParameterError("keep", value, "give a list of endpoint names.")
    return [str(v) for v in value]
