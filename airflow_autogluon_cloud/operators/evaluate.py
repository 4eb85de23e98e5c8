"""AGEvaluateOperator: score several models on the same labelled data, as one evaluation job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.operators.base import (
    CONNECTION_TEMPLATE_FIELDS,
    AutoGluonCloudBaseOperator,
    raise_for_event,
)
from airflow_autogluon_cloud.operators.deploy import model_uri_from

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGEvaluateOperator(AutoGluonCloudBaseOperator):
    """Score models on **the same** labelled dataset with AutoGluon's scorers, in an evaluation job.

    Unlike each fit's own validation score (measured on a split that fit made for itself), these
    numbers are comparable: every model sees the same rows. The job name comes from the task
    instance, so a retry reattaches to the job the earlier try started (or reuses its report).

    XCom (``return_value``): ``job_name``, ``status``, ``data_uri``, ``model_uris``, ``label``,
    ``problem_type``, ``eval_metric``, ``higher_is_better``, ``metric_directions``, ``num_rows``,
    ``class_counts`` (classification), ``metrics`` (model key -> metric -> value), ``score_val``
    (each model's own validation score, for contrast) and ``model_versions`` (model key ->
    ``{"group", "version", "approval_status"}`` for models given as registry references). Beside
    them: ``comparisons`` (each model against ``baseline``: per metric both scores, the difference,
    bootstrap intervals at 80/90/95/99%, DeLong's p for ROC AUC, McNemar's for accuracy, and per
    slice), ``slices``, ``evidence_file`` / ``evidence_uri`` (every model's per-row predictions, a
    Parquet file in the job's ``output.tar.gz``) and ``absent_models`` (optional models left out,
    e.g. ``{"champion": {"group": "churn", "version": None}}``: the evaluation compared against no
    champion, which the promotion gate checks is still so).

    :param data: the labelled data: a DataFrame, a local file or an ``s3://`` URI. (templated)
    :param models: ``{key: model}``, where a model is a ``model.tar.gz`` URI, a fit task's XCom or
        a registry reference (``{"registry": "churn", "version": "latest-approved"}``,
        ``"registry://churn/3"``); keys name the models in the report. (templated)
    :param optional_models: keys of ``models`` that may be absent: a registry reference with no
        approved version yet (the first champion) is left out instead of failing. (templated)
    :param eval_metric: the metric to compare on; default the models' own eval metric. (templated)
    :param metrics: further metrics to report; default AutoGluon's auxiliary set. (templated)
    :param baseline: the model key the others are compared with (paired statistics). (templated)
    :param slices: columns of ``data`` whose values get their own comparison, e.g. ``["region"]``. (templated)
    :param n_resamples: paired bootstrap resamples.
    :param seed: the bootstrap's seed.
    :param instance_type: SageMaker instance type (ignored by the local backend). (templated)
    :param custom_image_uri: image to run instead of the AutoGluon training container. (templated)
    :param volume_size: EBS volume in GB.
    :param max_runtime: maximum seconds the job may run.
    :param job_name: explicit job name; default derived from the task instance. (templated)
    :param tags: extra tags for the job. (templated)
    :param backtest_windows: time series: how many holdout windows of ``prediction_length`` points
        per item, from the end of ``data``, the metrics are averaged over.
    :param static_features: time series: the models' static features, one row per item. (templated)
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "data",
        "models",
        "optional_models",
        "eval_metric",
        "metrics",
        "baseline",
        "slices",
        "instance_type",
        "custom_image_uri",
        "job_name",
        "tags",
        "static_features",
    )
    template_fields_renderers = {"models": "json", "tags": "json"}

    def __init__(
        self,
        *,
        data: Any,
        models: dict[str, Any] | str,
        optional_models: Sequence[str] = (),
        eval_metric: str | None = None,
        metrics: list[str] | None = None,
        instance_type: str = "ml.m5.xlarge",
        custom_image_uri: str | None = None,
        volume_size: int = 30,
        max_runtime: int = 3600,
        job_name: str | None = None,
        tags: dict[str, str] | None = None,
        backtest_windows: int = 1,
        static_features: Any = None,
        baseline: str = "champion",
        slices: list[str] | None = None,
        n_resamples: int = 1000,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.backtest_windows = backtest_windows
        self.static_features = static_features
        self.data = data
        self.models = models
        self.optional_models = optional_models
        self.eval_metric = eval_metric
        self.metrics = metrics
        self.instance_type = instance_type
        self.custom_image_uri = custom_image_uri
        self.volume_size = volume_size
        self.max_runtime = max_runtime
        self.job_name = job_name
        self.tags = tags
        self.baseline = baseline
        self.slices = slices
        self.n_resamples = n_resamples
        self.seed = seed
        self._absent: dict[str, dict[str, Any]] = {}
        self._started_job: str | None = None

    def resolve_models(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """Model URIs by key, and the registry versions the references named."""
        from airflow_autogluon_cloud.exceptions import InvalidParameterError

        if not isinstance(self.models, dict) or not self.models:
            raise InvalidParameterError("models", self.models, 'give {"challenger": ..., "champion": ...}.')
        uris: dict[str, str] = {}
        versions: dict[str, dict[str, Any]] = {}
        for key, model in self.models.items():
            candidate, _ = model_uri_from(model)
            try:
                uri, version = self.hook.registry.resolve(candidate, parameter=f"models[{key!r}]")
            except InvalidParameterError as err:
                if key in self.optional_models and "no approved version" in str(err):
                    self.log.info("Leaving %s out of the evaluation: %s", key, err)
                    group = model.get("registry") if isinstance(model, dict) else str(model).split("/")[2]
                    self._absent[key] = {"group": group, "version": None}
                    continue
                raise
            uris[key] = uri
            if version is not None:
                versions[key] = {
                    "group": version.group,
                    "version": version.version,
                    "approval_status": version.approval_status,
                }
        return uris, versions

    def execute(self, context: Context) -> dict[str, Any]:
        uris, versions = self.resolve_models()
        name = self.job_name or naming.name_from_context("eval", context)
        submission = self.hook.evaluation.start(
            job_name=name,
            data=self.data,
            models=uris,
            eval_metric=self.eval_metric,
            metrics=self.metrics,
            instance_type=self.instance_type,
            custom_image_uri=self.custom_image_uri,
            volume_size=self.volume_size,
            max_runtime=self.max_runtime,
            tags=self.tags,
            backtest_windows=self.backtest_windows,
            static_features=self.static_features,
            baseline=self.baseline,
            slices=self.slices,
            n_resamples=self.n_resamples,
            seed=self.seed,
        )
        job = self._started_job = submission.job_name
        self.log.info("Evaluation job: %s (backend %s) for %s", job, self.hook.backend_name, ", ".join(uris))
        if self.deferrable:
            desc = self.hook.describe_job(JobKind.EVALUATION, job)
            if not desc.status.is_terminal:
                self.wait_in_triggerer(
                    JobKind.EVALUATION, job, self.max_runtime, kwargs={"versions": versions, "absent": self._absent}
                )
            self.hook.raise_for_status(desc)
        else:
            self.wait_for(JobKind.EVALUATION, job)
        return self._result(job, versions)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        versions: dict[str, Any] | None = None,
        absent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._absent = absent or {}
        event = raise_for_event(event, JobKind.EVALUATION, self._started_job)
        return self._result(event["job_name"], versions or {})

    def _result(self, job: str, versions: dict[str, dict[str, Any]]) -> dict[str, Any]:
        result = self.hook.evaluation.result(job)
        result["model_versions"] = versions
        result["absent_models"] = self._absent
        metric = result.get("eval_metric")
        for key, scores in (result.get("metrics") or {}).items():
            self.log.info(
                "%s: %s = %s on %s rows (its own validation score: %s)",
                key,
                metric,
                scores.get(metric),
                result.get("num_rows"),
                (result.get("score_val") or {}).get(key),
            )
        return result

    def on_kill(self) -> None:
        if self._started_job:
            self.hook.stop_job(JobKind.EVALUATION, self._started_job)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the holdout and models in; the report out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.evaluate(self, task_instance)
