"""AGBatchPredictOperator: score a dataset with a trained model as a batch transform job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.links.autogluon_cloud import AGTransformJobLink
from airflow_autogluon_cloud.operators.base import (
    CONNECTION_TEMPLATE_FIELDS,
    AutoGluonCloudBaseOperator,
    raise_for_event,
)
from airflow_autogluon_cloud.operators.data_checks import apply_data_checks, check_mode
from airflow_autogluon_cloud.operators.deploy import resolve_model, with_model_version

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGBatchPredictOperator(AutoGluonCloudBaseOperator):
    """Batch inference: stage ``test_data``, run a transform job, return the results' URI.

    On SageMaker this is ``CreateTransformJob`` with line splitting and multi-record batches; the
    model created for the job is removed afterwards. Locally it is a detached job that streams the
    input in chunks with ``instance_count`` worker processes and writes its output atomically.

    XCom: ``job_name``, ``status``, ``output_uri`` (JSON lines: the prediction, then
    ``<class>_proba`` columns), ``input_uri``, ``backend``, and ``local_results_path`` when
    ``download`` is set.

    :param model_uri: a ``model.tar.gz`` URI, the fit task's XCom dict, or a registry reference
        (``{"registry": "churn", "version": "latest-approved"}`` or a version number), resolved
        when the task runs; the version used is in the XCom as ``model_version``. (templated)
    :param test_data: a DataFrame, a local file or an ``s3://`` URI; for a model reading one image
        column, a folder of images too (a local folder or an ``s3://`` prefix ending in ``/``: one
        request per file). (templated)
    :param predict_proba: the downloaded file holds class probabilities instead of predictions.
    :param include_predict: with ``predict_proba``, keep the prediction column too.
    :param predict_kwargs: prediction options: ``decision_threshold`` (binary models), ``model`` (a
        name from the leaderboard), ``as_multiclass``; checked against the model before the job
        starts, passed to the serving script in the job's environment. (templated)
    :param download: also save the results as a CSV on this machine (``save_path``).
    :param save_path: file or directory for the download; default under the local root. (templated)
    :param instance_type: SageMaker instance type. (templated)
    :param instance_count: instances (SageMaker) or worker processes (local).
    :param framework_version: AutoGluon inference image version; default the model's. (templated)
    :param custom_image_uri: inference image to use instead of the AutoGluon container. (templated)
    :param max_runtime: maximum seconds the job may run.
    :param job_name: explicit job name; default derived from the task instance. (templated)
    :param wait_for_completion: wait for the job to finish.
    :param tags: extra tags. (templated)
    :param known_covariates: time series: the known covariates' values for the horizon, per item
        (a DataFrame or a local CSV/Parquet file). (templated)
    :param static_features: time series: one row per item of static features. (templated)
    :param data_checks: check the batch against the model's baseline (schema, completeness, new
        categories, drift of each column and of the answers; ``docs/data-checks.md``): ``"warn"``
        (default: a warning, the summary in the XCom's ``data_checks`` and the Asset events'
        extras), ``"fail"`` (the task fails once the output is written, naming columns and
        checks) or ``"off"``.
    :param data_check_options: the checks' thresholds and switches, e.g.
        ``{"js_threshold": 0.2, "skip_checks": ["extra_column_check"]}``. (templated)

    For a time-series model ``test_data`` is the history of every item to forecast; the input is
    partitioned by item (no series is ever split) and the results hold ``item_id``,
    ``timestamp``, ``mean`` and one column per quantile, as ``TimeSeriesPredictor.predict``.
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "model_uri",
        "test_data",
        "save_path",
        "instance_type",
        "framework_version",
        "custom_image_uri",
        "job_name",
        "tags",
        "predict_kwargs",
        "known_covariates",
        "static_features",
        "data_check_options",
    )
    operator_extra_links = (AGTransformJobLink(),)

    def __init__(
        self,
        *,
        model_uri: Any,
        test_data: Any,
        predict_proba: bool = False,
        include_predict: bool = True,
        download: bool = False,
        save_path: str | None = None,
        instance_type: str = "ml.m5.2xlarge",
        instance_count: int = 1,
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        max_runtime: int = 24 * 3600,
        job_name: str | None = None,
        wait_for_completion: bool = True,
        tags: dict[str, str] | None = None,
        predict_kwargs: dict[str, Any] | str | None = None,
        known_covariates: Any = None,
        static_features: Any = None,
        data_checks: str = "warn",
        data_check_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_checks = check_mode(data_checks)
        self.data_check_options = data_check_options
        self.model_uri = model_uri
        self.test_data = test_data
        self.predict_proba = predict_proba
        self.include_predict = include_predict
        self.download = download
        self.save_path = save_path
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.framework_version = framework_version
        self.custom_image_uri = custom_image_uri
        self.max_runtime = max_runtime
        self.job_name = job_name
        self.wait_for_completion = wait_for_completion
        self.tags = tags
        self.predict_kwargs = predict_kwargs
        self.known_covariates = known_covariates
        self.static_features = static_features
        self._started_job: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autogluon_cloud.services.monitoring import check_options

        check_options(self.data_check_options)  # before any job: a bad option fails at once
        uri, version, model_version = resolve_model(self.hook, self.model_uri)
        name = self.job_name or naming.name_from_context("bt", context)
        submission = self.hook.start_batch_predict(
            job_name=name,
            model_uri=uri,
            test_data=self.test_data,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            framework_version=self.framework_version or version,
            custom_image_uri=self.custom_image_uri,
            max_runtime=self.max_runtime,
            tags=self.tags,
            predict_kwargs=self.predict_kwargs,
            known_covariates=self.known_covariates,
            static_features=self.static_features,
            data_checks=self.data_checks != "off",
        )
        job = submission.job_name
        self._started_job = job
        AGTransformJobLink.persist(context, self.hook.console_url(JobKind.TRANSFORM, job))
        if not self.wait_for_completion:
            return with_model_version(self.hook.batch_result(job), model_version)
        if self.deferrable:
            desc = self.hook.describe_job(JobKind.TRANSFORM, job)
            if not desc.status.is_terminal:
                self.wait_in_triggerer(JobKind.TRANSFORM, job, self.max_runtime, {"model_version": model_version})
            self._raise_for_status(job)
        else:
            try:
                self.wait_for(JobKind.TRANSFORM, job)
            finally:
                self._cleanup_model(job)
        return with_model_version(self._checked(context, self._result(job)), model_version)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, model_version: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        job = (event or {}).get("job_name") or self._started_job
        try:
            event = raise_for_event(event, JobKind.TRANSFORM, job)
        finally:
            if job:
                self._cleanup_model(job)
        return with_model_version(self._checked(context, self._result(event["job_name"])), model_version)

    def _raise_for_status(self, job: str) -> None:
        desc = self.hook.describe_job(JobKind.TRANSFORM, job)
        if desc.status.is_terminal and not desc.status.is_successful:
            self._cleanup_model(job)
        self.hook.raise_for_status(desc)

    def _cleanup_model(self, job: str) -> None:
        try:
            self.hook.cleanup_batch_model(job)
        except Exception as err:  # leftover models cost nothing; never fail the scoring for it
            self.log.warning("Could not remove the model of transform job %s: %s", job, err)

    def _result(self, job: str) -> dict[str, Any]:
        self._cleanup_model(job)
        result = self.hook.batch_result(job)
        if self.download:
            result["local_results_path"] = self.hook.download_predict_results(
                job, self.save_path, predict_proba=self.predict_proba, include_predict=self.include_predict
            )
        self.log.info("Transform job %s completed: results at %s", job, result["output_uri"])
        return result

    def _checked(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        """The result with the batch's data checks (``data_checks``), which may fail the task."""
        from airflow_autogluon_cloud.services.monitoring import check_options

        summary = apply_data_checks(
            self, context, result["job_name"], self.data_checks, check_options(self.data_check_options)
        )
        return result if summary is None else {**result, "data_checks": summary}

    def on_kill(self) -> None:
        if self._started_job:
            self.hook.stop_job(JobKind.TRANSFORM, self._started_job)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the registry version, model and data in; scores out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.batch_predict(self, task_instance)
