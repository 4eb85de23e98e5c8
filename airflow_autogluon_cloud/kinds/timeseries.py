"""The time-series kind: ``TimeSeriesPredictor``; rows belong to series, answers are forecasts.

A batch never splits a series: input is partitioned by item into whole files, and each file is
one request (``SplitType=None``), as AutoGluon Cloud sends a time-series batch. Answers hold
``item_id``, ``timestamp``, ``mean`` and one column per quantile level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds.base import SERIES, PredictorKind, TransformShape

DEFAULT_ID_COLUMN = "item_id"
DEFAULT_TIMESTAMP_COLUMN = "timestamp"
DEFAULT_TARGET = "target"
#: AutoGluon's time-series metrics (autogluon.timeseries.metrics.AVAILABLE_METRICS, 1.6).
METRICS: tuple[str, ...] = ("BIAS", "MAE", "MAEB", "MAPE", "MASE", "MQL", "MSE", "RMSE", "RMSLE", "RMSSE")
METRICS += ("SMAPE", "SQL", "WAPE", "WAPEB", "WQL")
DEFAULT_METRICS = ("WQL", "MASE", "RMSE", "WAPE")
#: Models whose weights come from the Hugging Face hub (presets include some of them).
HUB_MODELS = ("Chronos", "Chronos2", "ChronosBolt", "Toto", "TiRex", "Moirai", "TimesFM")
#: Init arguments the fit operator names explicitly.
NAMED_INIT_ARGS = ("target", "prediction_length", "freq", "known_covariates_names", "quantile_levels", "eval_metric")


def _positive_int(parameter: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterError(parameter, value, "expected a positive integer.")
    return value


@dataclass(frozen=True)
class TimeSeriesKind(PredictorKind):
    """The rules of time-series predictors (see the module docstring)."""

    def ag_args_extra(self, columns: dict[str, str] | None) -> dict[str, Any]:
        columns = dict(columns or {})
        unknown = sorted(set(columns) - {"id_column", "timestamp_column"})
        if unknown:
            raise InvalidParameterError("timeseries_columns", columns, "only id_column and timestamp_column are read.")
        for key, value in columns.items():
            if not isinstance(value, str) or not value:
                raise InvalidParameterError(key, value, "give the column's name as a non-empty string.")
        return {"timeseries": {"id_column": DEFAULT_ID_COLUMN, "timestamp_column": DEFAULT_TIMESTAMP_COLUMN, **columns}}

    def check_predict_data(self, predict_data: Any, ag_args: dict[str, Any] | None = None) -> None:
        """The training job forecasts ``predict_data``'s series; it has no future values of known covariates."""
        needed = ((ag_args or {}).get("predictor_init_args") or {}).get("known_covariates_names")
        if predict_data is not None and needed:
            raise InvalidParameterError(
                "predict_data",
                "(given)",
                f"the model forecasts with the known covariates {needed}, whose values for the horizon a training "
                "job does not have: forecast with AGBatchPredictOperator(known_covariates=...) after the fit.",
            )

    def answer_rows(self, data: Any, summary: dict[str, Any]) -> int:
        """A forecast answers ``prediction_length`` rows per item."""
        layout = summary.get("timeseries") or {}
        items = data[str(layout.get("id_column") or DEFAULT_ID_COLUMN)].nunique()
        return int(items) * int(layout.get("prediction_length") or 1)

    def predict_data_columns(self, required: list[str]) -> list[str]:
        return required  # whole series: the target, id and timestamp, as the training data

    def check_init_args(self, init_args: dict[str, Any]) -> None:
        length = init_args.get("prediction_length", 1)
        _positive_int("prediction_length", length)
        levels = init_args.get("quantile_levels")
        if levels is not None:
            if not isinstance(levels, list) or not levels:
                raise InvalidParameterError("quantile_levels", levels, "give a list of numbers between 0 and 1.")
            for level in levels:
                if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
                    raise InvalidParameterError("quantile_levels", levels, f"{level!r} is not between 0 and 1.")
        metric = init_args.get("eval_metric")
        if metric is not None and str(metric).upper() not in METRICS:
            raise InvalidParameterError(
                "eval_metric", metric, f"use one of AutoGluon's time-series metrics: {METRICS}."
            )
        covariates = init_args.get("known_covariates_names")
        if covariates is not None and (
            not isinstance(covariates, list) or not all(isinstance(c, str) and c for c in covariates)
        ):
            raise InvalidParameterError("known_covariates_names", covariates, "give a list of column names.")

    def required_columns(self, label: str | None, ag_args: dict[str, Any]) -> list[str]:
        columns = ag_args.get("timeseries") or {}
        init_args = ag_args.get("predictor_init_args") or {}
        return [
            str(columns.get("id_column", DEFAULT_ID_COLUMN)),
            str(columns.get("timestamp_column", DEFAULT_TIMESTAMP_COLUMN)),
            str(label),
            *[str(c) for c in init_args.get("known_covariates_names") or []],
        ]

    def item_column(self, ag_args: dict[str, Any]) -> str | None:
        return str((ag_args.get("timeseries") or {}).get("id_column", DEFAULT_ID_COLUMN))

    def check_training_data(self, frame: Any, parameter: str, ag_args: dict[str, Any]) -> None:
        from airflow_autogluon_cloud.kinds.series_checks import check_series

        check_series(frame, parameter, ag_args, min_windows=_val_windows(ag_args))

    def check_static_features(self, static: Any, items: Any, ag_args: dict[str, Any]) -> None:
        from airflow_autogluon_cloud.kinds.series_checks import check_static_features

        columns = ag_args.get("timeseries") or {}
        check_static_features(static, str(columns.get("id_column", DEFAULT_ID_COLUMN)), items)

    def check_fit_args(self, fit_args: dict[str, Any]) -> None:
        """A foundation model asked for where the hub is off (``HF_HUB_OFFLINE``) cannot load: say so now."""
        import os

        wanted = self.hub_models(fit_args)
        if wanted and os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise InvalidParameterError(
                "predictor_fit_args['hyperparameters']",
                wanted,
                "these models download weights from the Hugging Face hub, and HF_HUB_OFFLINE is set: remove them, "
                "or give the job hub access (unset HF_HUB_OFFLINE).",
            )

    def check_batch_inputs(self, history: Any, known: Any, static: Any, summary: dict[str, Any]) -> None:
        """Every item's history, its known covariates for the horizon, its static features (if the model has them)."""
        layout = summary.get("timeseries") or {}
        id_column = str(layout.get("id_column", DEFAULT_ID_COLUMN))
        needed = [str(c) for c in layout.get("known_covariates_names") or []]
        columns = [id_column, str(layout.get("timestamp_column", DEFAULT_TIMESTAMP_COLUMN)), str(summary.get("label"))]
        missing = [c for c in [*columns, *needed] if c not in history.columns]
        if missing:
            raise InvalidParameterError("test_data", list(history.columns), f"the history needs the columns {missing}.")
        items = set(history[id_column])
        if needed:
            if known is None:
                raise InvalidParameterError(
                    "known_covariates", None, f"the model forecasts with {needed}: give their values for the horizon."
                )
            missing = [c for c in [id_column, *needed] if c not in known.columns]
            if missing:
                raise InvalidParameterError("known_covariates", list(known.columns), f"add the columns {missing}.")
            counts = known.groupby(id_column).size()
            length = int(layout.get("prediction_length") or 1)
            short = sorted(str(i) for i in items if int(counts.get(i, 0)) < length)
            if short:
                raise InvalidParameterError(
                    "known_covariates", short[:5], f"each item needs {length} future rows (the horizon)."
                )
        if static is not None:
            self.check_static_features(static, sorted(items, key=str), {"timeseries": layout})

    def write_batch_parts(
        self, history: Any, known: Any, static: Any, summary: dict[str, Any], directory: Any, min_parts: int = 1
    ) -> Any:
        """Batch input partitioned by item: JSON envelopes of whole series (see :mod:`.series_io`)."""
        from airflow_autogluon_cloud.kinds.series_io import write_parts

        layout = summary.get("timeseries") or {}
        full = {
            "id_column": str(layout.get("id_column", DEFAULT_ID_COLUMN)),
            "timestamp_column": str(layout.get("timestamp_column", DEFAULT_TIMESTAMP_COLUMN)),
        }
        return write_parts(history, known, static, full, directory, min_parts=min_parts)

    def evaluation_args(self, summary: dict[str, Any], windows: int) -> dict[str, Any]:
        _positive_int("backtest_windows", windows)
        return {"predictor_type": self.name, "timeseries": summary.get("timeseries") or {}, "num_windows": windows}

    def metric_names(self, problem_type: str | None) -> frozenset[str]:
        return frozenset(METRICS)

    def default_metrics(self, problem_type: str | None) -> list[str]:
        return list(DEFAULT_METRICS)

    def hub_models(self, fit_args: dict[str, Any]) -> list[str]:
        """Models named in ``hyperparameters`` whose weights come from the Hugging Face hub."""
        hyperparameters = fit_args.get("hyperparameters")
        names = list(hyperparameters) if isinstance(hyperparameters, dict) else []
        return [n for n in names if any(str(n).startswith(m) for m in HUB_MODELS)]


def _val_windows(ag_args: dict[str, Any]) -> int:
    windows = (ag_args.get("predictor_fit_args") or {}).get("num_val_windows", 1)
    return windows if isinstance(windows, int) and not isinstance(windows, bool) and windows > 0 else 1


def min_history(prediction_length: int, windows: int = 1) -> int:
    """Points the longest series needs for ``windows`` validation windows (AutoGluon's rule)."""
    return prediction_length * (windows + 1) + 1


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


TIMESERIES = TimeSeriesKind(
    name="timeseries",
    package="autogluon.timeseries",
    class_name="TimeSeriesPredictor",
    label_key="target",
    label_default=DEFAULT_TARGET,
    batch_split=SERIES,
    # One request per input file (a JSON envelope of whole series); one CSV answer per file.
    transform=TransformShape("None", "SingleRecord", "application/json", "text/csv", "None"),
    answer_columns=("item_id", "timestamp", "mean", "<quantile>..."),
    evaluable=True,
    # predict_data: the series to forecast the next horizon of, once the fit is done.
    scores_in_training_job=True,
    summary_fields=("timeseries", "model_names"),
    named_init_args=NAMED_INIT_ARGS,
    checks_whole_data=True,
    # TimeSeriesPredictor.load takes require_version_match only.
    load_accepts_py_version_check=False,
    accepts_static_features=True,
)
