"""Evaluation: score one or more models on the same labelled data, as a job, and read the report.

The job runs ``container/evaluate.py`` under the training contract (see
:class:`~airflow_autogluon_cloud.backends.specs.EvaluationJobSpec`): the data, the arguments, the
code and one channel per ``model.tar.gz``. The metrics are computed in the job with AutoGluon's
own scorers. Everything that can be checked here is checked before any job is created: the
models (they must exist and agree on label, problem type and AutoGluon version), the label
column, and the metrics (they must fit the problem type).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.base import CHANNEL_CODE, CHANNEL_STATIC, PROVIDER_TAG, Backend
from airflow_autogluon_cloud.backends.specs import (
    CHANNEL_EVAL_ARGS,
    CHANNEL_EVAL_DATA,
    EVALUATION_CODE,
    EVALUATION_REPORT,
    MODEL_CHANNEL_PREFIX,
    EvaluationJobSpec,
)
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.jobconfig import dumps_canonical
from airflow_autogluon_cloud.kinds import JobKind, get_kind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.cost import usage as job_usage
from airflow_autogluon_cloud.services.jobs import JobService, JobSubmission
from airflow_autogluon_cloud.services.models import ModelService
from airflow_autogluon_cloud.services.roles import ExecutionRole
from airflow_autogluon_cloud.services.staging import StagingService
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import StorageLocator, join_uri

_MODEL_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Report keys the XCom carries.
_REPORT_KEYS = (
    "label",
    "problem_type",
    "eval_metric",
    "higher_is_better",
    "metric_directions",
    "num_rows",
    "class_counts",
    "comparisons",
    "slices",
    "evidence_file",
)


@dataclass
class EvaluationService:
    """Starts evaluation jobs and reads their reports.

    :param backend: where jobs run.
    :param jobs: job control (finding an earlier try's job).
    :param models: model artifacts (checks, training summaries).
    :param staging: staging of the data, arguments and code.
    :param storage: the storage for any URI (reading the report).
    :param settings: where artifacts go.
    :param execution_role: the role jobs run as, on backends that use one.
    :param log: the task log.
    """

    backend: Backend
    jobs: JobService
    models: ModelService
    staging: StagingService
    storage: StorageLocator
    settings: ProviderSettings
    execution_role: ExecutionRole
    log: TaskLog

    def check_models(self, models: Any) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """``{key: model_uri}`` and each model's training summary, after checking they agree."""
        if isinstance(models, (list, tuple)):
            models = {f"model_{i}": uri for i, uri in enumerate(models)}
        if not isinstance(models, dict) or not models:
            raise InvalidParameterError(
                "models", models, 'give {"challenger": model_uri, "champion": model_uri, ...} or a list of URIs.'
            )
        summaries: dict[str, dict[str, Any]] = {}
        for key, uri in models.items():
            if not isinstance(key, str) or not _MODEL_KEY.fullmatch(key):
                raise InvalidParameterError("models", key, "name each model with 1-40 of a-z, 0-9 and _.")
            self.models.check_uri(uri, parameter=f"models[{key!r}]")
            summary = self.models.read_summary(uri).to_dict()  # the defaults filled in, as typed
            if not summary.get("label") or not summary.get("problem_type"):
                raise InvalidParameterError(
                    f"models[{key!r}]", uri, "no training_summary.json beside it: evaluate models from AGFitOperator."
                )
            kind = get_kind(summary["predictor_type"])
            if not kind.evaluable:
                raise InvalidParameterError(
                    f"models[{key!r}]", kind.name, f"{kind.name} predictors cannot be evaluated yet."
                )
            summaries[key] = summary
        first_key, first = next(iter(summaries.items()))
        for key, summary in summaries.items():
            for field in ("predictor_type", "label", "problem_type", "autogluon_version"):
                if summary.get(field) != first.get(field):
                    raise InvalidParameterError(
                        "models",
                        {first_key: first.get(field), key: summary.get(field)},
                        f"the models disagree on {field}: evaluate models of one task (one label and problem "
                        "type, trained with one AutoGluon version) together.",
                    )
        return dict(models), summaries

    @staticmethod
    def check_metrics(
        predictor_type: str | None, problem_type: str, eval_metric: str, metrics: list[str] | None
    ) -> list[str]:
        kind = get_kind(predictor_type)
        valid = kind.metric_names(problem_type)
        if not valid:
            raise InvalidParameterError("models", problem_type, f"no metrics are known for {kind.name} {problem_type}.")
        extra = kind.default_metrics(problem_type) if metrics is None else list(metrics)
        for parameter, name in [("eval_metric", eval_metric), *(("metrics", m) for m in extra)]:
            if name not in valid:
                raise InvalidParameterError(
                    parameter, name, f"not a metric for a {problem_type} problem; use one of {sorted(valid)}."
                )
        return [m for m in extra if m != eval_metric]

    @staticmethod
    def check_statistics(baseline: Any, slices: Any, n_resamples: Any, seed: Any) -> list[str]:
        """The slice columns, after checking the paired statistics' arguments."""
        if not isinstance(baseline, str) or not _MODEL_KEY.fullmatch(baseline):
            raise InvalidParameterError("baseline", baseline, "name the model key to compare with, e.g. 'champion'.")
        if isinstance(slices, str):
            slices = [slices]
        if slices is not None and (
            not isinstance(slices, (list, tuple)) or not all(isinstance(c, str) and c for c in slices)
        ):
            raise InvalidParameterError("slices", slices, "give a list of column names of the data.")
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or not 100 <= n_resamples <= 100_000:
            raise InvalidParameterError("n_resamples", n_resamples, "give a whole number from 100 to 100000.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidParameterError("seed", seed, "give a whole number >= 0.")
        return list(dict.fromkeys(slices or []))

    def start(
        self,
        *,
        job_name: str,
        data: Any,
        models: Any,
        eval_metric: str | None = None,
        metrics: list[str] | None = None,
        instance_type: str = "ml.m5.xlarge",
        custom_image_uri: str | None = None,
        volume_size: int = 30,
        max_runtime: int = 3600,
        tags: dict[str, str] | None = None,
        backtest_windows: int = 1,
        static_features: Any = None,
        baseline: str = "champion",
        slices: list[str] | None = None,
        n_resamples: int = 1000,
        seed: int = 0,
    ) -> JobSubmission:
        """Start an evaluation job under ``job_name``, or pick up the one an earlier try started.

        :param data: the labelled data: a DataFrame, a local file or an ``s3://`` URI.
        :param models: ``{key: model_uri}`` (keys name the models in the report) or a list of URIs.
        :param eval_metric: the metric the models are compared on; default the models' own.
        :param metrics: further metrics to report; default AutoGluon's auxiliary set for the problem type.
        :param backtest_windows: forecasts: the holdout windows (the last ``prediction_length``
            points per item, then the ones before) the metrics are averaged over.
        :param static_features: forecasts: the models' static features, one row per item.
        :param baseline: the model key every other model is compared with, pairwise, on each metric
            (bootstrap intervals; DeLong for ROC AUC, McNemar for accuracy); absent: no comparison.
        :param slices: columns of ``data`` (e.g. a region) whose values get their own comparison.
        :param n_resamples: paired bootstrap resamples (more: steadier interval ends, longer job).
        :param seed: the bootstrap's seed (the same data, models and seed give the same intervals).
        """
        if not naming.is_valid_name(job_name):
            raise InvalidParameterError("job_name", job_name, "use 1-63 letters, digits and hyphens.")
        uris, summaries = self.check_models(models)
        first = next(iter(summaries.values()))
        label, problem_type = str(first["label"]), str(first["problem_type"])
        metric = eval_metric or str(first.get("eval_metric") or "")
        extra = self.check_metrics(first.get("predictor_type"), problem_type, metric, metrics)
        slice_columns = self.check_statistics(baseline, slices, n_resamples, seed)
        kind = get_kind(first.get("predictor_type"))
        kind_args = kind.evaluation_args(first, backtest_windows)
        interpreter = kind.local_python()
        if static_features is not None and not kind.accepts_static_features:
            kind.check_static_features(static_features, [], first)  # refuses, naming the kind
        prepared = self.staging.prepare_data(data, "data", [label, *slice_columns])
        static = self.staging.prepare_data(static_features, "static_features") if static_features is not None else None
        try:
            image = self.backend.resolve_image(
                "training",
                framework_version=first.get("autogluon_version"),
                custom_image_uri=custom_image_uri,
                instance_type=instance_type,
            )
            role = self.execution_role()
            found = self.jobs.find(JobKind.EVALUATION, job_name)
            if isinstance(found, JobSubmission):
                return found
            args = {
                "version": 1,
                "label": label,
                "problem_type": problem_type,
                "eval_metric": metric,
                "metrics": extra,
                "models": {key: MODEL_CHANNEL_PREFIX + key for key in uris},
                **kind_args,
                "baseline": baseline,
                "slices": slice_columns,
                "n_resamples": n_resamples,
                "seed": seed,
            }
            data_uri = self.staging.stage_prepared(prepared).uri
            channels = {
                CHANNEL_EVAL_DATA: data_uri,
                CHANNEL_EVAL_ARGS: self.staging.stage_bytes(dumps_canonical(args), "eval_args.json").uri,
                CHANNEL_CODE: self.staging.stage_code(EVALUATION_CODE).uri,
                **{MODEL_CHANNEL_PREFIX + key: uri for key, uri in uris.items()},
            }
            if static is not None:
                channels[CHANNEL_STATIC] = self.staging.stage_prepared(static).uri
        finally:
            prepared.cleanup()
            if static is not None:
                static.cleanup()
        spec = EvaluationJobSpec(
            name=found,
            channels=channels,
            output_path=join_uri(self.settings.cloud_output_path, "evaluation"),
            hyperparameters={
                "ag_eval_data": data_uri,
                "ag_models": json.dumps(uris, sort_keys=True),
                "ag_framework_version": image.framework_version,
            },
            instance_type=instance_type,
            volume_size=volume_size,
            max_runtime=max_runtime,
            image_uri=image.image_uri,
            role_arn=role,
            tags={PROVIDER_TAG: "evaluation", **(tags or {})},
            interpreter=interpreter,
        )
        self.log.info("Creating evaluation job %s for %s on %s", found, ", ".join(uris), data_uri)
        self.backend.create_evaluation_job(spec)
        return JobSubmission(found, JobStatus.IN_PROGRESS, reattached=False)

    def report(self, job_name: str) -> dict[str, Any]:
        """The job's ``evaluation.json`` ({} until it completed)."""
        from airflow_autogluon_cloud.archives import safe_extract

        desc = self.jobs.describe(JobKind.EVALUATION, job_name)
        if desc.status != JobStatus.COMPLETED or not desc.secondary_uri:
            return {}
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "output.tar.gz"
            try:
                self.storage(desc.secondary_uri).download_file(desc.secondary_uri, archive)
            except Exception as err:  # a completed job without its report: say so, do not crash
                self.log.warning("Could not read the report of %s at %s: %s", job_name, desc.secondary_uri, err)
                return {}
            path = safe_extract(archive, Path(tmp) / "output") / EVALUATION_REPORT
            return json.loads(path.read_text()) if path.is_file() else {}

    def result(self, job_name: str) -> dict[str, Any]:
        """The small dict the evaluate operator pushes to XCom: per-model metrics on the same rows."""
        desc = self.jobs.describe(JobKind.EVALUATION, job_name)
        hps = desc.hyperparameters
        result: dict[str, Any] = {
            "job_name": job_name,
            "status": desc.status.value,
            "backend": self.backend.name,
            "data_uri": hps.get("ag_eval_data"),
            "model_uris": json.loads(hps["ag_models"]) if hps.get("ag_models") else {},
            "report_uri": desc.secondary_uri if desc.status == JobStatus.COMPLETED else None,
            "usage": job_usage(desc, self.settings.instance_prices),
        }
        report = self.report(job_name)
        if report:
            result.update({key: report.get(key) for key in _REPORT_KEYS})
            # the per-row evidence travels in output.tar.gz beside evaluation.json
            result["evidence_uri"] = (
                f"{desc.secondary_uri}#{report['evidence_file']}" if report.get("evidence_file") else None
            )
            result["metrics"] = {key: model["metrics"] for key, model in report["models"].items()}
            result["score_val"] = {key: model.get("score_val") for key, model in report["models"].items()}
        return result
