"""The OpenLineage each operator reports on completion, built from its rendered fields and its XCom.

Imported only inside the operators' ``get_openlineage_facets_on_complete``, i.e. only when the
OpenLineage provider is installed and its listener runs: nothing here is loaded at DAG parse.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from airflow_autogluon_cloud.lineage import (
    MODEL_FACET_NAME,
    MODEL_FACET_SCHEMA_FILE,
    endpoint_dataset,
    registry_dataset,
    storage_dataset,
)

SCHEMA_URL = (
    "https://github.com/airflow-provider-autogluon-cloud/airflow-provider-autogluon-cloud/blob/main/"
    f"airflow_autogluon_cloud/lineage/{MODEL_FACET_SCHEMA_FILE}#/$defs/AutoGluonModelRunFacet"
)


@cache
def model_facet_class() -> type:
    """The custom run facet (an OpenLineage ``RunFacet``), defined on first use."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class AutoGluonModelRunFacet(RunFacet):
        """The model of the run: see ``AutoGluonModelRunFacet.json`` in this package."""

        metrics: dict[str, float | None] = attr.field(factory=dict)
        group: str | None = attr.field(default=None)
        version: int | None = attr.field(default=None)
        approvalStatus: str | None = attr.field(default=None)
        autogluonVersion: str | None = attr.field(default=None)
        predictorType: str | None = attr.field(default=None)
        modelUri: str | None = attr.field(default=None)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL

    return AutoGluonModelRunFacet


def xcom_result(operator: Any) -> dict[str, Any]:
    """What the task returned ({} when it returned nothing, e.g. it failed before)."""
    value = getattr(operator, "lineage_result", None)
    return value if isinstance(value, dict) else {}


def _numbers(values: dict[str, Any] | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in (values or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[str(key)] = float(value)
    return out


def _input(named: tuple[str, str] | None, facets: dict[str, Any] | None = None) -> Any:
    from openlineage.client.event_v2 import InputDataset

    if named is None:
        return None
    return InputDataset(namespace=named[0], name=named[1], inputFacets=facets or {})


def _output(named: tuple[str, str] | None) -> Any:
    from openlineage.client.event_v2 import OutputDataset

    return None if named is None else OutputDataset(namespace=named[0], name=named[1])


def _lineage(inputs: list[Any], outputs: list[Any], model: dict[str, Any] | None = None) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage

    run_facets = {MODEL_FACET_NAME: model_facet_class()(**model)} if model else {}
    unique_in = {(d.namespace, d.name): d for d in inputs if d is not None}
    unique_out = {(d.namespace, d.name): d for d in outputs if d is not None}
    return OperatorLineage(inputs=list(unique_in.values()), outputs=list(unique_out.values()), run_facets=run_facets)


def _model_uri_of(value: Any) -> str | None:
    """A model URI from a URI or a fit XCom (registry references resolve at run time: see the XCom)."""
    if isinstance(value, str) and value.endswith(".tar.gz"):
        return value
    if isinstance(value, dict) and isinstance(value.get("model_artifact_uri"), str):
        return str(value["model_artifact_uri"])
    return None


def _version_model(version: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "group": version.get("group"),
        "version": version.get("version"),
        "approvalStatus": version.get("approval_status"),
        "metrics": _numbers(version.get("metrics")),
        "autogluonVersion": version.get("framework_version"),
        "modelUri": version.get("model_uri"),
        **extra,
    }


# one builder per operator ------------------------------------------------------------------------


def fit(operator: Any, task_instance: Any) -> Any:
    """Training (and tuning) data in; the model artifact out."""
    result = xcom_result(operator)
    inputs = [_input(storage_dataset(operator.train_data)), _input(storage_dataset(operator.tuning_data))]
    outputs = [_output(storage_dataset(result.get("model_artifact_uri")))]
    model = {
        "metrics": _numbers({"score_val": (result.get("metrics") or {}).get("score_val")}),
        "autogluonVersion": result.get("framework_version"),
        "predictorType": result.get("predictor_type"),
        "modelUri": result.get("model_artifact_uri"),
    }
    return _lineage(inputs, outputs, model if result else None)


def _holdout_facets(result: dict[str, Any], assertions: list[Any]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    facets: dict[str, Any] = {}
    if isinstance(result.get("num_rows"), int):
        facets["dataQualityMetrics"] = dqm.DataQualityMetricsInputDatasetFacet(
            rowCount=result["num_rows"], columnMetrics={}
        )
    if assertions:
        facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(assertions=assertions)
    return facets


def evaluate(operator: Any, task_instance: Any) -> Any:
    """The holdout (with its row count and every model's metrics as data-quality facets) and the
    models in; the evaluation report out."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa

    result = xcom_result(operator)
    metrics: dict[str, dict[str, Any]] = result.get("metrics") or {}
    assertions = [
        dqa.Assertion(
            assertion=f"{key}: {name}", success=True, name=name, actual=repr(value), column=result.get("label")
        )
        for key, values in sorted(metrics.items())
        for name, value in sorted((values or {}).items())
        if value is not None
    ]
    # the data as the user named it (the job read a staged copy of it: ``data_uri``)
    holdout = storage_dataset(operator.data) or storage_dataset(result.get("data_uri"))
    inputs = [_input(holdout, _holdout_facets(result, assertions))]
    inputs += [_input(storage_dataset(uri)) for uri in (result.get("model_uris") or {}).values()]
    outputs = [_output(storage_dataset(result.get("report_uri")))]
    return _lineage(inputs, outputs)


def register(operator: Any, task_instance: Any) -> Any:
    """The model artifact (and the data its metrics were measured on) in; the registry version out."""
    version = xcom_result(operator)
    # the register operator records "<data URI> (<evaluation job>)" as the version's dataset
    measured_on = str(version.get("dataset") or "").split(" (", 1)[0]
    inputs = [_input(storage_dataset(version.get("model_uri"))), _input(storage_dataset(measured_on))]
    outputs = [_output(registry_dataset(version))]
    kind = operator.model_uri.get("predictor_type") if isinstance(operator.model_uri, dict) else None
    return _lineage(inputs, outputs, _version_model(version, predictorType=kind) if version else None)


def promote(operator: Any, task_instance: Any) -> Any:
    """The challenger's registry version and the holdout (the gate's rules as data-quality
    assertions) in; the version, now Approved or Rejected, out."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa

    decision = xcom_result(operator)
    if not decision:
        return _lineage([], [])
    rules = [
        *(decision.get("rules") or []),
        *(decision.get("guardrails") or {}).values(),
        *(decision.get("slices") or []),
    ]
    assertions = [
        dqa.Assertion(
            assertion=str(rule.get("rule") or rule.get("metric") or "rule"),
            success=bool(rule.get("passed")),
            name=str(rule.get("metric") or rule.get("rule") or ""),
            column=rule.get("column"),
            actual=None if rule.get("challenger") is None else repr(rule.get("challenger")),
            expected=None if rule.get("champion") is None else repr(rule.get("champion")),
        )
        for rule in rules
        if isinstance(rule, dict)
    ]
    version = {"group": decision.get("group"), "version": decision.get("challenger_version")}
    holdout = {"num_rows": decision.get("num_rows")}
    inputs = [
        _input(registry_dataset(version)),
        _input(storage_dataset(decision.get("data_uri")), _holdout_facets(holdout, assertions)),
    ]
    model = {
        "group": decision.get("group"),
        "version": decision.get("challenger_version"),
        "approvalStatus": "Approved" if decision.get("decision") == "approved" else "Rejected",
        "metrics": _numbers({str(decision.get("metric")): decision.get("challenger_score")}),
    }
    return _lineage(inputs, [_output(registry_dataset(version))], model)


def batch_predict(operator: Any, task_instance: Any) -> Any:
    """The registry version (when the model came from the registry), the model and the data in;
    the scored output out."""
    result = xcom_result(operator)
    version = result.get("model_version") or {}
    model_uri = version.get("model_uri") or _model_uri_of(operator.model_uri)
    scored = storage_dataset(operator.test_data) or storage_dataset(result.get("input_uri"))
    inputs = [
        _input(registry_dataset(version)) if version else None,
        _input(storage_dataset(model_uri)),
        _input(scored, _batch_check_facets(result.get("data_checks"))),
    ]
    outputs = [_output(storage_dataset(result.get("output_uri")))]
    return _lineage(inputs, outputs, _version_model(version) if version else None)


#: The batch checks (``container/data_checks.py`` ``CHECKS``), each reported as passed or not.
BATCH_CHECKS = (
    "missing_column_check",
    "extra_column_check",
    "data_type_check",
    "completeness_check",
    "categorical_values_check",
    "baseline_drift_check",
)


def _batch_check_facets(checks: Any) -> dict[str, Any]:
    """The batch's data checks as standard data-quality facets: ``dataQualityMetrics`` (row count
    and per-column metrics from ``statistics.json``) and ``dataQualityAssertions`` (one failed
    assertion per violated check and column; one passed assertion per check with no violation)."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    if not isinstance(checks, dict) or checks.get("status") not in ("checked", "no_baseline"):
        return {}
    facets: dict[str, Any] = {}
    columns = {
        name: dqm.ColumnMetrics(
            nullCount=_int(values.get("nullCount")),
            distinctCount=_int(values.get("distinctCount")),
            sum=values.get("sum"),
            count=values.get("count"),
            min=values.get("min"),
            max=values.get("max"),
        )
        for name, values in (checks.get("column_metrics") or {}).items()
        if isinstance(values, dict)
    }
    if isinstance(checks.get("rows"), int) or columns:
        facets["dataQualityMetrics"] = dqm.DataQualityMetricsInputDatasetFacet(
            rowCount=checks.get("rows"), columnMetrics=columns
        )
    if checks["status"] != "checked":  # no baseline: nothing was asserted
        return facets
    violated: dict[str, list[str]] = checks.get("checks") or {}
    assertions = [
        dqa.Assertion(assertion=check, success=False, column=str(column), name=check)
        for check, names in sorted(violated.items())
        for column in names
    ]
    assertions += [
        dqa.Assertion(assertion=check, success=True, name=check) for check in BATCH_CHECKS if check not in violated
    ]
    facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(assertions=assertions)
    return facets


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def deploy(operator: Any, task_instance: Any) -> Any:
    """The registry version (when used) and the model in; the endpoint out."""
    result = xcom_result(operator)
    version = result.get("model_version") or {}
    inputs = [
        _input(registry_dataset(version)) if version else None,
        _input(storage_dataset(result.get("model_uri") or _model_uri_of(operator.model_uri))),
    ]
    outputs = [_output(endpoint_dataset(result.get("endpoint_name"), result.get("backend")))]
    return _lineage(inputs, outputs, _version_model(version) if version else None)


def cleanup(operator: Any, task_instance: Any) -> Any:
    """The endpoints the task deleted, as inputs (their lifecycle ends here)."""
    result = xcom_result(operator)
    names = [result.get("endpoint_name")] if result.get("deleted") is True else []
    for entry in result.get("endpoints") or []:
        if isinstance(entry, dict) and entry.get("deleted"):
            names.append(entry.get("endpoint_name") or entry.get("name"))
    backend = result.get("backend")
    return _lineage([_input(endpoint_dataset(name, backend)) for name in names], [])
