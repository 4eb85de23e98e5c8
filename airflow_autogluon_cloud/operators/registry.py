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


class AGPromoteModelOperator(AutoGluonCloudMixin, BaseOperator):
    """The promotion gate: approve the challenger only if it beats the champion on the same holdout.

    Both models must have been scored in one evaluation (:class:`AGEvaluateOperator`): the rule
    compares their ``metric`` there, in its direction, and approves the challenger when it is
    better by more than ``min_improvement`` (or when there is no champion yet). Otherwise the
    challenger is rejected and the champion stays the group's latest approved version. The
    decision, the scores and who decided are written to the registry.

    With ``review`` (the XCom of an ``ApprovalOperator`` run before this task) a person must also
    have approved; their name is recorded beside this task's.

    XCom (``return_value``): ``decision`` (``approved``/``rejected``), ``reason``, ``group``,
    ``challenger_version``, ``champion_version``, ``metric``, ``higher_is_better``,
    ``challenger_score``, ``champion_score``, ``improvement``, ``min_improvement``, ``num_rows``,
    ``data_uri``, ``latest_approved_version``, ``set_by``.

    :param group: the registry group. (templated)
    :param challenger_version: the challenger's version number, or the register task's XCom. (templated)
    :param evaluation: the evaluate task's XCom (both models on the same data). (templated)
    :param challenger: the challenger's key in the evaluation. (templated)
    :param champion: the champion's key in the evaluation (absent: there is no champion yet). (templated)
    :param metric: the metric to compare; default the evaluation's eval metric. (templated)
    :param higher_is_better: the metric's direction; default the evaluation's. (templated)
    :param min_improvement: how much better (metric units) the challenger must be. (templated)
    :param review: an ``ApprovalOperator``'s XCom; if given, a person must have chosen Approve. (templated)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
            min_improvement=float(self.min_improvement),
            review=self.review if isinstance(self.review, dict) else None,
        )
        self.log.info(
            "Promotion gate: %s version %d %s (%s)",
            self.group,
            number,
            decision["decision"],
            decision["reason"],
        )
        return decision
