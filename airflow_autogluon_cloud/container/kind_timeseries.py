"""The time-series kind, container side: ``TimeSeriesPredictor`` on long-format data (one row per
item and timestamp). Part of the predictor kinds (see ``ag_kinds.py``); shipped beside it.

A request holds whole series. ``text/csv``, JSON records, JSON lines and Parquet bodies carry the
history only; a JSON envelope carries the history, the known covariates for the horizon and the
static features together (each part as records, or pandas ``split`` orient)::

  {"history": [{"item_id": "A", "timestamp": "2024-01-07", "demand": 12, "promo": 0}, ...],
   "known_covariates": [{"item_id": "A", "timestamp": "2024-01-14", "promo": 1}, ...],
   "static_features": [{"item_id": "A", "region": "north"}, ...]}

JSON, rather than AutoGluon Cloud's base64 Parquet envelope: any client can write it without
pyarrow, the three parts are plain to read in logs, and a request stays well under the 6 MB
payload limit for the hundreds of series a real-time call carries. Answers hold ``item_id``,
``timestamp``, ``mean`` and one column per quantile level, as ``TimeSeriesPredictor.predict``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ag_kinds import BadRequestError, InputError, Kind, attr

#: Models whose weights come from the Hugging Face hub.
HUB_MODELS = ("Chronos", "Chronos2", "ChronosBolt", "Toto", "TiRex", "Moirai", "TimesFM")
#: Presets that include such models (AutoGluon 1.6).
HUB_PRESETS = ("best_quality", "high_quality", "medium_quality", "chronos", "bolt", "chronos2", "chronos_bolt")
ENVELOPE_PARTS = ("history", "known_covariates", "static_features")
#: Requests with fewer series are forecast in this process. AutoGluon's local models (Naive, ETS...)
#: otherwise send each series to a joblib process pool, whose round trip costs more than a few
#: series' models, and whose start in a fresh process costs seconds (its workers import AutoGluon).
IN_PROCESS_MAX_ITEMS = 64
#: Set by the local backend's batch runner to its number of worker processes.
BATCH_WORKERS_ENV = "AG_BATCH_WORKER_PROCESSES"


@dataclass
class ForecastRequest:
    history: Any
    known_covariates: Any = None
    static_features: Any = None


def options(args_or_summary: dict[str, Any]) -> dict[str, Any]:
    """The series layout: id and timestamp columns (``ag_args.json``'s or the summary's ``timeseries``)."""
    section = args_or_summary.get("timeseries") or {}
    return {
        **section,
        "id_column": str(section.get("id_column") or "item_id"),
        "timestamp_column": str(section.get("timestamp_column") or "timestamp"),
    }


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def to_series(frame: Any, layout: dict[str, Any], static: Any = None) -> Any:
    from autogluon.timeseries import TimeSeriesDataFrame

    # A copy: AutoGluon renames the id column of the static features frame it is given, in place.
    extra = {"static_features_df": static.copy()} if static is not None else {}
    return TimeSeriesDataFrame.from_data_frame(
        frame, id_column=layout["id_column"], timestamp_column=layout["timestamp_column"], **extra
    )


class TimeSeriesKind(Kind):
    name = "timeseries"
    label_key = "target"
    label_default = "target"
    predict_options = ("model",)
    whole_predict_data = True

    def required_columns(self, args: dict[str, Any]) -> list[tuple[str, str]]:
        layout = options(args)
        init_args = args.get("predictor_init_args") or {}
        columns = [("label", str(self.label(args))), ("id", layout["id_column"])]
        columns.append(("timestamp", layout["timestamp_column"]))
        columns += [("known covariate", str(c)) for c in init_args.get("known_covariates_names") or []]
        return columns

    def training_data(self, frame: Any, args: dict[str, Any], static: Any = None, channel: str = "train_data") -> Any:
        return to_series(frame, options(args), static)

    def check_fit(self, args: dict[str, Any], log: Any) -> None:
        """A foundation model asked for without hub access fails now, naming it; a preset with some warns."""
        fit_args = args.get("predictor_fit_args") or {}
        hyperparameters = fit_args.get("hyperparameters")
        named = [str(n) for n in (hyperparameters or {}) if any(str(n).startswith(m) for m in HUB_MODELS)]
        if named and _hub_offline():
            raise InputError(
                f"models {', '.join(named)} download their weights from the Hugging Face hub, and HF_HUB_OFFLINE is "
                "set: remove them from hyperparameters, or run the job with hub access"
            )
        presets = str(fit_args.get("presets") or ("medium_quality" if hyperparameters is None else ""))
        if _hub_offline() and presets.lower() in HUB_PRESETS:
            log.warning(
                "presets=%r include foundation models (Chronos-2, Toto...) whose weights come from the Hugging Face "
                "hub; HF_HUB_OFFLINE is set, so AutoGluon will skip them after failing to load them. Name the "
                "models in hyperparameters (e.g. {'ETS': {}, 'DirectTabular': {}}) to train without them.",
                presets,
            )

    def summary_fields(self, predictor: Any, args: dict[str, Any]) -> dict[str, Any]:
        init_args = args.get("predictor_init_args") or {}
        layout = options(args)
        layout.update(
            {
                "target": str(predictor.target),
                "prediction_length": int(predictor.prediction_length),
                "freq": str(attr(predictor, "freq") or init_args.get("freq") or "") or None,
                "known_covariates_names": [str(c) for c in attr(predictor, "known_covariates_names") or []],
                "quantile_levels": [float(q) for q in attr(predictor, "quantile_levels") or []],
            }
        )
        return {"features": [], "class_labels": None, "problem_type": "forecast", "timeseries": layout}

    # serving ----------------------------------------------------------------------------------

    def load(self, model_dir: str) -> Any:
        # The predictor writes beside its models while predicting; a read-only model directory
        # (SageMaker's /opt/ml/model) is copied to a writable place first.
        if not os.access(model_dir, os.W_OK):
            copy = Path(tempfile.mkdtemp(prefix="ag-ts-model-")) / "model"
            shutil.copytree(model_dir, copy)
            model_dir = str(copy)
        from ag_kinds import load_with

        predictor = load_with(self.import_predictor(), model_dir)
        _import_first_predict_dependencies()
        try:
            predictor.persist()
        except Exception as err:  # an optimisation only
            print(f"Could not persist the models in memory ({type(err).__name__}: {err}); continuing", flush=True)
        return predictor

    def serving_state(self, model: Any) -> None:
        super().serving_state(model)
        layout = options(model.summary)
        model.id_column = layout["id_column"]
        model.timestamp_column = layout["timestamp_column"]
        model.label = str(attr(model.predictor, "target") or layout.get("target") or model.label)
        model.known_covariates_names = [str(c) for c in (attr(model.predictor, "known_covariates_names") or [])]
        model.problem_type = "forecast"

    def model_names(self, predictor: Any) -> list[str] | None:
        return predictor.model_names()

    def read_request(self, model: Any, body: Any, content_type: str | None, general: Any) -> Any:
        payload = _envelope(body, content_type)
        if payload is None:
            request = ForecastRequest(general(model, body, content_type))
        else:
            request = ForecastRequest(*(_part(payload.get(key), key) for key in ENVELOPE_PARTS))
            if request.history is None:
                raise BadRequestError(400, 'the JSON envelope needs "history": the series to forecast from')
        _check_columns(request.history, [model.id_column, model.timestamp_column, model.label], "history")
        if model.known_covariates_names:
            if request.known_covariates is None:
                raise BadRequestError(
                    400,
                    f"this model needs the known covariates {', '.join(model.known_covariates_names)} for the "
                    'horizon: send a JSON envelope with "history" and "known_covariates"',
                )
            _check_columns(
                request.known_covariates,
                [model.id_column, model.timestamp_column, *model.known_covariates_names],
                "known_covariates",
            )
        if request.static_features is not None:
            _check_columns(request.static_features, [model.id_column], "static_features")
        return request

    def rows(self, request: Any) -> int:
        return len(request.history)

    def predict(self, model: Any, request: Any, options_: dict[str, Any]) -> Any:
        return forecast(model, request, options_.get("model"))

    def answer_whole(self, serve: Any, model: Any, history: Any, static: Any, input_error: Any) -> str:
        """The forecast of ``history``'s series (and ``static`` features) as JSON lines: one request
        read and predicted by the serving script (a training job's ``predict_data``). Numbers are
        written in full (Python's shortest repr), so the forecast reads back exactly."""
        if history.empty:
            raise input_error("predict_data is empty: it has no rows")
        body: dict[str, Any] = {"history": history.to_dict(orient="split", index=False)}
        if static is not None:
            body["static_features"] = static.to_dict(orient="split", index=False)
        try:
            request, _ = serve.prepare(model, body, "application/json", "application/jsonl")
            answer = serve.predict(model, request)
        except BadRequestError as err:
            raise input_error(f"predict_data: {err}") from None
        answer["timestamp"] = answer["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        return "".join(json.dumps(record) + "\n" for record in answer.to_dict(orient="records"))

    # evaluation -------------------------------------------------------------------------------

    def evaluation_rows(self, frame: Any, label: str) -> Any:
        return frame  # a missing target is part of a regular series, not a row to drop

    def check_evaluated(self, key: str, predictor: Any, args: dict[str, Any]) -> None:
        if str(predictor.target) != args["label"]:
            raise InputError(f"model {key!r} forecasts {predictor.target!r}, not {args['label']!r}")

    def directions(self, problem_type: str, metrics: list[str]) -> dict[str, bool]:
        return dict.fromkeys(metrics, False)  # forecast errors: lower is better

    def evaluate(
        self, predictor: Any, frame: Any, args: dict[str, Any], metrics: list[str], evidence: Any = None
    ) -> dict[str, Any]:
        """Each metric, averaged over the backtest windows: the last ``prediction_length`` points per
        item, then the ``prediction_length`` before them, and so on (``num_windows`` in all)."""
        from kind_tabular import finite

        static = args.get("_static_features")
        data = self.training_data(frame, {"timeseries": args.get("timeseries") or {}}, static)
        windows = int(args.get("num_windows") or 1)
        totals: dict[str, list[float]] = {name: [] for name in metrics}
        for window in range(windows):
            cut = (windows - 1 - window) * predictor.prediction_length
            part = data.slice_by_timestep(None, -cut) if cut else data
            scores = predictor.evaluate(part, metrics=list(metrics))
            for name in metrics:
                value = finite(scores.get(name))
                if value is not None:
                    totals[name].append(-value)  # evaluate answers higher-is-better: errors come negated
        return {name: (sum(v) / len(v) if v else None) for name, v in totals.items()}

    def best_model(self, predictor: Any) -> str:
        return str(predictor.model_best)


def forecast(model: Any, request: ForecastRequest, chosen_model: str | None = None) -> Any:
    """``predictor.predict`` on one request: ``item_id``, ``timestamp``, ``mean`` and quantile columns."""
    layout = {"id_column": model.id_column, "timestamp_column": model.timestamp_column}
    data = to_series(request.history, layout, request.static_features)
    known = to_series(request.known_covariates, layout) if request.known_covariates is not None else None
    extra: dict[str, Any] = {"model": chosen_model} if chosen_model else {}
    if known is not None:
        extra["known_covariates"] = known
    with _local_model_parallelism(data.num_items):
        predictions = model.predictor.predict(data, **extra)
    import pandas as pd

    answer = pd.DataFrame(predictions).reset_index()  # a plain frame, not a TimeSeriesDataFrame
    answer.columns = [str(c) for c in answer.columns]
    return answer


def _import_first_predict_dependencies() -> None:
    """Import now what the first ``predict`` would import: AutoGluon seeds PyTorch on every call
    (``seed_everything``), and importing torch there takes seconds from the first request."""
    import importlib

    try:
        importlib.import_module("torch")
    except ImportError:  # not installed: AutoGluon skips the seeding too
        pass


def _local_model_parallelism(items: int) -> Any:
    """Where local models forecast each series: in this process for a small request, and in a local
    batch job's workers (``AG_BATCH_WORKER_PROCESSES``: the job spreads its parts over that many
    processes, so a process pool in each would only add its start and its round trips); otherwise
    AutoGluon's default, a process pool over the cores.

    The forecast is the same either way: only where each series' model runs changes.
    """
    import contextlib

    if items >= IN_PROCESS_MAX_ITEMS and not os.environ.get(BATCH_WORKERS_ENV, "").strip():
        return contextlib.nullcontext()
    try:
        from joblib import parallel_config
    except ImportError:  # joblib < 1.3: AutoGluon's default
        return contextlib.nullcontext()
    return parallel_config(backend="sequential")


def _envelope(body: Any, content_type: str | None) -> dict[str, Any] | None:
    """The JSON envelope, or ``None`` when the body is not one (then it is the history alone)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        return None
    if isinstance(body, dict):
        payload = body
    else:
        raw = bytes(body).decode("utf-8-sig") if isinstance(body, (bytes, bytearray, memoryview)) else str(body)
        if not raw.lstrip().startswith("{"):
            return None
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as err:
            raise BadRequestError(400, f"the body is not valid JSON: {err}") from None
    if not isinstance(payload, dict) or "history" not in payload:
        return None
    unknown = sorted(set(payload) - set(ENVELOPE_PARTS))
    if unknown:
        raise BadRequestError(400, f"unknown keys {unknown} in the JSON envelope; allowed: {', '.join(ENVELOPE_PARTS)}")
    return payload


def _part(value: Any, name: str) -> Any:
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value) if value else None
    if isinstance(value, dict) and "columns" in value and "data" in value:
        return pd.DataFrame(value["data"], columns=value["columns"])
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        return pd.DataFrame(value)
    raise BadRequestError(400, f'"{name}" must be an array of records or a pandas "split" object')


def _check_columns(frame: Any, required: list[str], part: str) -> None:
    present = {str(c) for c in frame.columns}
    missing = [c for c in required if c not in present]
    if missing:
        raise BadRequestError(400, f"{part} lacks the columns {', '.join(missing)} (it has: {', '.join(present)})")


KIND = TimeSeriesKind()
