"""Model registry operators: register a trained model, and the promotion gate.

:class:`AGRegisterModelOperator` adds a version (``PendingManualApproval``) to a group, with the
metrics it measured on a holdout and what the holdout was. :class:`AGPromoteModelOperator`
compares the challenger with the champion on the evaluation both were scored in, and writes the
outcome (Approved or Rejected, and who decided) to the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudMixin
from airflow_autogluon_cloud.operators.deploy import model_uri_from

if TYPE_CHECKING:
    from airflow.sdk import Context


def acting_task(context: Context) -> str:
    """Who sets a registry field from a task: ``airflow:<dag>/<run>/<task>``."""
    ti = context["ti"]
    return f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}"


class AGRegisterModelOperator(AutoGluonCloudMixin, BaseOperator):
    """Register a model as a new version of a registry group (SageMaker Model Registry, or local).

    Registering is idempotent: a version is keyed by (training job, model URI), so a retried task
    finds the version its earlier try registered instead of adding a second one.

    XCom (``return_value``): the version: ``group``, ``version``, ``model_uri``, ``training_job``,
    ``framework_version``, ``metrics``, ``dataset``, ``approval_status``, ``status_set_by``,
    ``status_reason``, ``created_at``, ``arn``.

    :param group: the registry group (model package group) name. (templated)
    :param model_uri: a ``model.tar.gz`` URI or the fit task's XCom (``fit.output``). (templated)
    :param evaluation: an evaluate task's XCom: the metrics of ``model_key`` in it, and the data it
        was measured on, are recorded with the version. (templated)
    :param model_key: which model of ``evaluation`` this is. (templated)
    :param metrics: metrics to record instead (name -> number). (templated)
    :param dataset: what ``metrics`` were measured on. (templated)
    :param training_job: the training job; default the fit XCom's, or read from the model URI. (templated)
    :param description: the version's description. (templated)
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "group",
        "model_uri",
        "evaluation",
        "model_key",
        "metrics",
        "dataset",
        "training_job",
        "description",
    )
    template_fields_renderers = {"evaluation": "json", "metrics": "json"}
    ui_color = "#e8f4e0"

    def __init__(
        self,
        *,
        group: str,
        model_uri: Any,
        evaluation: dict[str, Any] | str | None = None,
        model_key: str = "challenger",
        metrics: dict[str, float] | None = None,
        dataset: str | None = None,
        training_job: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.group = group
        self.model_uri = model_uri
        self.evaluation = evaluation
        self.model_key = model_key
        self.metrics = metrics
        self.dataset = dataset
        self.training_job = training_job
        self.description = description

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autogluon_cloud.exceptions import InvalidParameterError

        uri, framework_version = model_uri_from(self.model_uri)
        job = self.training_job or (self.model_uri.get("job_name") if isinstance(self.model_uri, dict) else None)
        metrics, dataset = self.metrics, self.dataset
        if self.evaluation is not None:
            evaluation = self.evaluation if isinstance(self.evaluation, dict) else {}
            scored = evaluation.get("metrics") or {}
            if self.model_key not in scored:
                raise InvalidParameterError(
                    "evaluation", self.evaluation, f"pass an evaluation XCom that scored {self.model_key!r}."
                )
            metrics = metrics or {k: v for k, v in scored[self.model_key].items() if v is not None}
            dataset = dataset or f"{evaluation.get('data_uri')} ({evaluation.get('job_name')})"
        version = self.hook.registry.register(
            group=self.group,
            model_uri=uri,
            training_job=job,
            metrics=metrics,
            dataset=dataset,
            description=self.description,
            framework_version=framework_version,
            registered_by=acting_task(context),
        )
        self.log.info("%s version %d: %s (%s)", version.group, version.version, uri, version.approval_status)
        return version.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the model artifact in; the registry version out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.register(self, task_instance)


class AGPromoteModelOperator(AutoGluonCloudMixin, BaseOperator):
    """The promotion gate: approve the challenger only if it beats the champion beyond the noise.

    Both models must have been scored in one evaluation (:class:`AGEvaluateOperator`), which also
    computed the paired difference of every metric with bootstrap intervals. The challenger is
    approved when the lower bound of its improvement on ``metric`` (at ``confidence``) exceeds
    ``min_improvement`` and ``min_relative_improvement`` of the champion's score, every guardrail
    holds, the holdout has ``min_rows`` rows and no slice is significantly worse; or when there is
    no champion yet. ``confidence=None`` compares point estimates (the rule before intervals).
    Otherwise the challenger is rejected and the champion stays the group's latest approved
    version. The decision, every rule checked and who decided are written to the registry.

    The approval is a compare-and-set: if another run approved a version after this run's
    evaluation, the challenger is rejected ("champion changed since evaluation"), never approved
    against a champion it was not compared with. See ``docs/lifecycle.md``.

    With ``review`` (the XCom of an ``ApprovalOperator`` run before this task) a person must also
    have approved; their name is recorded beside this task's.

    XCom (``return_value``): ``decision`` (``approved``/``rejected``), ``reason``, ``group``,
    ``challenger_version``, ``champion_version``, ``metric``, ``higher_is_better``,
    ``challenger_score``, ``champion_score``, ``improvement``, ``min_improvement``, ``num_rows``,
    ``data_uri``, ``latest_approved_version``, ``set_by``; beside them ``confidence``,
    ``improvement_interval``, ``p_value``, ``test``, ``rules`` (every rule checked, with both
    scores, the improvement, its interval, p-value, rows and passed), ``guardrails``, ``slices``,
    ``options`` and ``approved_between``.

    :param group: the registry group. (templated)
    :param challenger_version: the challenger's version number, or the register task's XCom. (templated)
    :param evaluation: the evaluate task's XCom (both models on the same data). (templated)
    :param challenger: the challenger's key in the evaluation. (templated)
    :param champion: the champion's key in the evaluation (absent: there is no champion yet). (templated)
    :param metric: the metric to compare; default the evaluation's eval metric. (templated)
    :param higher_is_better: the metric's direction; default the evaluation's. (templated)
    :param min_improvement: how much better (metric units) the challenger must be. (templated)
    :param review: an ``ApprovalOperator``'s XCom; if given, a person must have chosen Approve. (templated)
    :param confidence: the interval level, one of 0.8, 0.9, 0.95, 0.99; ``None``: point estimates. (templated)
    :param min_relative_improvement: how much better, as a fraction of the champion's score. (templated)
    :param guardrails: ``{metric: tolerance}``: the challenger may not be worse on these by more than
        the tolerance (judged on the interval's worse end); a metric the evaluation lacks fails. (templated)
    :param min_rows: a holdout with fewer rows is rejected as too small to tell. (templated)
    :param slices: columns the evaluation computed slices for (``AGEvaluateOperator(slices=...)``),
        or ``{column: tolerance}``: no slice value may be significantly worse on ``metric``. (templated)
    :param min_slice_rows: slice values with fewer rows are reported but not judged. (templated)
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "group",
        "challenger_version",
        "evaluation",
        "challenger",
        "champion",
        "metric",
        "higher_is_better",
        "min_improvement",
        "review",
        "confidence",
        "min_relative_improvement",
        "guardrails",
        "min_rows",
        "slices",
        "min_slice_rows",
    )
    template_fields_renderers = {"evaluation": "json", "review": "json"}
    ui_color = "#e8f4e0"

    def __init__(
        self,
        *,
        group: str,
        challenger_version: Any,
        evaluation: dict[str, Any] | str,
        challenger: str = "challenger",
        champion: str = "champion",
        metric: str | None = None,
        higher_is_better: bool | None = None,
        min_improvement: float = 0.0,
        review: dict[str, Any] | str | None = None,
        confidence: float | None = 0.95,
        min_relative_improvement: float = 0.0,
        guardrails: dict[str, float] | None = None,
        min_rows: int = 0,
        slices: list[str] | dict[str, float] | None = None,
        min_slice_rows: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.confidence = confidence
        self.min_relative_improvement = min_relative_improvement
        self.guardrails = guardrails
        self.min_rows = min_rows
        self.slices = slices
        self.min_slice_rows = min_slice_rows
        self.group = group
        self.challenger_version = challenger_version
        self.evaluation = evaluation
        self.challenger = challenger
        self.champion = champion
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.min_improvement = min_improvement
        self.review = review

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autogluon_cloud.exceptions import InvalidParameterError

        version = self.challenger_version
        if isinstance(version, dict):
            version = version.get("version")
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                "challenger_version", self.challenger_version, "give a version number or the register task's XCom."
            ) from None
        if not isinstance(self.evaluation, dict):
            raise InvalidParameterError("evaluation", self.evaluation, "pass the evaluate task's XCom (a dict).")
        decision = self.hook.registry.promote(
            group=self.group,
            challenger_version=number,
            evaluation=self.evaluation,
            set_by=acting_task(context),
            challenger=self.challenger,
            champion=self.champion,
            metric=self.metric,
            higher_is_better=self.higher_is_better,
            min_improvement=self.min_improvement,
            review=self.review if isinstance(self.review, dict) else None,
            confidence=self.confidence,
            min_relative_improvement=self.min_relative_improvement,
            guardrails=self.guardrails,
            min_rows=self.min_rows,
            slices=self.slices,
            min_slice_rows=self.min_slice_rows,
        )
        self.log.info(
            "Promotion gate: %s version %d %s (%s)",
            self.group,
            number,
            decision["decision"],
            decision["reason"],
        )
        return decision

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the version and the gate's rules in; the version out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.promote(self, task_instance)
