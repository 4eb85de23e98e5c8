"""AGFitOperator: train an AutoGluon predictor on SageMaker or on this machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.kinds import DEFAULT_KIND, JobKind
from airflow_autogluon_cloud.links.autogluon_cloud import AGTrainingJobLink
from airflow_autogluon_cloud.operators.base import (
    CONNECTION_TEMPLATE_FIELDS,
    AutoGluonCloudBaseOperator,
    raise_for_event,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGFitOperator(AutoGluonCloudBaseOperator):
    """Fit an AutoGluon predictor as a training job and push a small result dict to XCom.

    The job name is derived from the task instance (dag, task, run, map index), so a retry after
    the worker died reattaches to the job the earlier try started (or reuses its result) instead
    of starting a second one.

    XCom (``return_value``): ``job_name``, ``status``, ``model_artifact_uri``,
    ``framework_version``, ``predictor_type``, ``backend``, ``leaderboard_uri``,
    ``cloud_output_path`` and ``metrics`` (``eval_metric``, ``score_val``, ``best_model``, ...);
    with ``predict_data``, also ``predictions`` (``uri`` of the job's ``output.tar.gz``, ``member``
    and ``rows``) and, when downloaded, ``local_predictions_path``.

    Train and score in one job: ``predict_data`` is scored with the fitted predictor inside the
    training job, by the same serving script a batch transform runs, so the output is the batch
    output's (JSON lines: the prediction, then ``<class>_proba`` columns). On SageMaker that saves
    the second container start of a separate transform job. ``hook.download_predict_results``
    and ``hook.read_predict_results`` take the training job's name as they take a transform job's.

    :param train_data: training data: a DataFrame, a local file (csv, csv.gz, parquet, jsonl) or an
        ``s3://`` URI. (templated)
    :param predictor_init_args: arguments for the predictor's constructor, e.g. ``{"label": "y"}``;
        JSON values only. (templated)
    :param predictor_fit_args: arguments for ``fit``, e.g. ``{"time_limit": 600, "presets": "good"}``;
        JSON values only. (templated)
    :param predictor_type: ``tabular``, ``multimodal`` or ``timeseries``. (templated)
    :param tuning_data: optional validation data, like ``train_data``. (templated)
    :param instance_type: SageMaker instance type (ignored by the local backend). (templated)
    :param framework_version: AutoGluon container version (SageMaker); default the newest the
        installed SageMaker SDK knows. The local backend uses the installed AutoGluon. (templated)
    :param custom_image_uri: training image to use instead of the AutoGluon container. (templated)
    :param volume_size: EBS volume in GB for the training instance.
    :param max_runtime: maximum seconds the job may run; waiting is bounded by it.
    :param job_name: explicit job name; default is derived from the task instance. (templated)
    :param wait_for_completion: wait for the job to finish; if False, return once it started.
    :param tags: extra tags for the job. (templated)
    :param environment: extra environment variables for the entry script. (templated)
    :param predict_data: data to score in the same job once the fit is done: a DataFrame, a local
        file or an ``s3://`` CSV URI; tabular and multimodal predictors. (templated)
    :param predict_proba: the downloaded predictions hold class probabilities instead of labels.
    :param include_predict: with ``predict_proba``, keep the prediction column too.
    :param download_predictions: also save the predictions as a CSV on this machine.
    :param predictions_save_path: file or directory for that download; default under the local
        root. (templated)
    :param id_column: time series: the column naming each series (default ``item_id``). (templated)
    :param timestamp_column: time series: the timestamp column (default ``timestamp``). (templated)
    :param target: time series: the column to forecast (default ``target``). (templated)
    :param prediction_length: time series: the forecast horizon, in steps of ``freq``.
    :param freq: time series: the data's frequency (``"W"``, ``"D"``...); inferred when not given.
        (templated)
    :param known_covariates_names: time series: columns known in advance for the horizon (e.g. a
        planned promotion); forecasts then need their future values.
    :param quantile_levels: time series: the quantiles forecast beside the mean.
    :param eval_metric: time series: AutoGluon's metric the models are ranked by (``WQL``, ``MASE``...).
    :param static_features: time series: one row per item of features that do not change over
        time, keyed by ``id_column`` (a DataFrame, local file or ``s3://`` CSV URI). (templated)

    The time-series parameters are ``predictor_init_args`` of ``TimeSeriesPredictor`` given by
    name; every one is checked before a job is created (columns, types, a regular frequency,
    enough history per item, no duplicate timestamps).
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "train_data",
        "tuning_data",
        "predictor_init_args",
        "predictor_fit_args",
        "predictor_type",
        "instance_type",
        "framework_version",
        "custom_image_uri",
        "job_name",
        "tags",
        "environment",
        "predict_data",
        "predictions_save_path",
        "id_column",
        "timestamp_column",
        "target",
        "freq",
        "static_features",
    )
    template_fields_renderers = {"predictor_init_args": "json", "predictor_fit_args": "json", "tags": "json"}
    operator_extra_links = (AGTrainingJobLink(),)

    def __init__(
        self,
        *,
        train_data: Any,
        predictor_init_args: dict[str, Any] | str | None = None,
        predictor_fit_args: dict[str, Any] | str | None = None,
        predictor_type: str = DEFAULT_KIND.name,
        tuning_data: Any = None,
        instance_type: str = "ml.m5.2xlarge",
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        volume_size: int = 100,
        max_runtime: int = 24 * 3600,
        job_name: str | None = None,
        wait_for_completion: bool = True,
        tags: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        predict_data: Any = None,
        predict_proba: bool = False,
        include_predict: bool = True,
        download_predictions: bool = False,
        predictions_save_path: str | None = None,
        id_column: str | None = None,
        timestamp_column: str | None = None,
        target: str | None = None,
        prediction_length: int | None = None,
        freq: str | None = None,
        known_covariates_names: list[str] | None = None,
        quantile_levels: list[float] | None = None,
        eval_metric: str | None = None,
        static_features: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.train_data = train_data
        self.tuning_data = tuning_data
        self.predictor_init_args = predictor_init_args
        self.predictor_fit_args = predictor_fit_args
        self.predictor_type = predictor_type
        self.instance_type = instance_type
        self.framework_version = framework_version
        self.custom_image_uri = custom_image_uri
        self.volume_size = volume_size
        self.max_runtime = max_runtime
        self.job_name = job_name
        self.wait_for_completion = wait_for_completion
        self.tags = tags
        self.environment = environment
        self.predict_data = predict_data
        self.predict_proba = predict_proba
        self.include_predict = include_predict
        self.download_predictions = download_predictions
        self.predictions_save_path = predictions_save_path
        self.id_column = id_column
        self.timestamp_column = timestamp_column
        self.target = target
        self.prediction_length = prediction_length
        self.freq = freq
        self.known_covariates_names = known_covariates_names
        self.quantile_levels = quantile_levels
        self.eval_metric = eval_metric
        self.static_features = static_features
        self._started_job: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        if self.download_predictions and self.predict_data is None:
            from airflow_autogluon_cloud.exceptions import InvalidParameterError

            raise InvalidParameterError(
                "download_predictions", True, "pass predict_data too: there is nothing to download without it."
            )
        name = self.job_name or naming.name_from_context("fit", context)
        submission = self.hook.start_training(
            job_name=name,
            train_data=self.train_data,
            predictor_type=self.predictor_type,
            tuning_data=self.tuning_data,
            predictor_init_args=self.predictor_init_args,
            predictor_fit_args=self.predictor_fit_args,
            instance_type=self.instance_type,
            framework_version=self.framework_version,
            custom_image_uri=self.custom_image_uri,
            volume_size=self.volume_size,
            max_runtime=self.max_runtime,
            tags=self.tags,
            environment=self.environment,
            predict_data=self.predict_data,
            timeseries_columns={
                key: value
                for key, value in (("id_column", self.id_column), ("timestamp_column", self.timestamp_column))
                if value is not None
            },
            static_features=self.static_features,
            named_init_args={
                "target": self.target,
                "prediction_length": self.prediction_length,
                "freq": self.freq,
                "known_covariates_names": self.known_covariates_names,
                "quantile_levels": self.quantile_levels,
                "eval_metric": self.eval_metric,
            },
        )
        job = submission.job_name
        self._started_job = job
        self.log.info("Training job: %s (backend %s)", job, self.hook.backend_name)
        AGTrainingJobLink.persist(context, self.hook.console_url(JobKind.TRAINING, job))
        if not self.wait_for_completion:
            return self.hook.training_result(job)
        if self.deferrable:
            desc = self.hook.describe_job(JobKind.TRAINING, job)
            if not desc.status.is_terminal:
                self.wait_in_triggerer(JobKind.TRAINING, job, self.max_runtime)
            self.hook.raise_for_status(desc)
        else:
            self.wait_for(JobKind.TRAINING, job)
        return self._result(job)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = raise_for_event(event, JobKind.TRAINING, self._started_job)
        return self._result(event["job_name"])

    def _result(self, job: str) -> dict[str, Any]:
        result = self.hook.training_result(job)
        metrics = result.get("metrics") or {}
        self.log.info(
            "Training job %s completed: best model %s, %s on validation %s; model artifact %s",
            job,
            metrics.get("best_model"),
            metrics.get("eval_metric"),
            metrics.get("score_val"),
            result.get("model_artifact_uri"),
        )
        if result.get("predictions"):
            self.log.info("Scored %d rows of predict_data in the same job", result["predictions"]["rows"])
            if self.download_predictions:
                result["local_predictions_path"] = self.hook.download_predict_results(
                    job,
                    self.predictions_save_path,
                    predict_proba=self.predict_proba,
                    include_predict=self.include_predict,
                )
        return result

    def on_kill(self) -> None:
        if self._started_job:
            self.hook.stop_job(JobKind.TRAINING, self._started_job)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the training and tuning data in; the model artifact out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.fit(self, task_instance)
