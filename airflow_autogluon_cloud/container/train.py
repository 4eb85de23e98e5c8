"""AutoGluon training entry script (SageMaker training contract).

Runs inside the AWS AutoGluon training container, and on this machine under the local backend,
unchanged. Self-contained: imports nothing from the Airflow provider.

Inputs (``SM_*`` environment, defaults are the container layout):
  SM_CHANNEL_TRAIN_DATA   one data file (csv, csv.gz, parquet, jsonl)
  SM_CHANNEL_TUNING_DATA  optional validation data file
  SM_CHANNEL_AG_ARGS      ag_args.json: predictor type, init and fit arguments
Outputs:
  SM_MODEL_DIR            the fitted predictor, plus code/serve.py so model.tar.gz deploys as is
  SM_OUTPUT_DATA_DIR      leaderboard.csv and training_summary.json (output.tar.gz)
  SM_OUTPUT_DIR/failure   a one-paragraph reason when the job fails
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

SUPPORTED_VERSION = 1
PREDICTOR_TYPES = ("tabular", "multimodal", "timeseries")
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl", ".json")

log = logging.getLogger("ag-train")


class TrainingInputError(Exception):
    """Bad data or configuration: reported as the job's failure reason, without a traceback."""


def env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def data_file(channel_dir: Path, channel: str) -> Path:
    files = sorted(p for p in channel_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise TrainingInputError(f"channel {channel} ({channel_dir}) holds no data file")
    if len(files) > 1:
        names = ", ".join(p.name for p in files[:10])
        raise TrainingInputError(f"channel {channel} holds {len(files)} files ({names}); expected exactly one")
    return files[0]


def load_frame(path: Path, channel: str) -> Any:
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
    elif name.endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path)
    elif name.endswith((".jsonl", ".json")):
        frame = pd.read_json(path, lines=True)
    else:
        raise TrainingInputError(f"{channel}: unsupported file {path.name}; use one of {', '.join(DATA_SUFFIXES)}")
    if len(frame) == 0:
        raise TrainingInputError(f"{channel} ({path.name}) has no rows")
    log.info("Loaded %s: %d rows, %d columns from %s", channel, len(frame), len(frame.columns), path.name)
    return frame


def load_ag_args(channel_dir: Path) -> dict[str, Any]:
    path = channel_dir / "ag_args.json"
    if not path.is_file():
        path = data_file(channel_dir, "ag_args")
    try:
        args = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise TrainingInputError(f"ag_args.json is not valid JSON: {err}") from None
    if args.get("version") != SUPPORTED_VERSION:
        raise TrainingInputError(
            f"ag_args.json version {args.get('version')!r} is not supported (this script reads {SUPPORTED_VERSION})"
        )
    if args.get("predictor_type") not in PREDICTOR_TYPES:
        raise TrainingInputError(
            f"unknown predictor_type {args.get('predictor_type')!r}; expected one of {', '.join(PREDICTOR_TYPES)}"
        )
    return args


def check_label(frame: Any, label: str | None, channel: str) -> None:
    if label is not None and label not in frame.columns:
        columns = ", ".join(str(c) for c in list(frame.columns)[:30])
        raise TrainingInputError(f"label column {label!r} not found in {channel}; columns are: {columns}")


def import_predictor(predictor_type: str) -> Any:
    module, cls = {
        "tabular": ("autogluon.tabular", "TabularPredictor"),
        "multimodal": ("autogluon.multimodal", "MultiModalPredictor"),
        "timeseries": ("autogluon.timeseries", "TimeSeriesPredictor"),
    }[predictor_type]
    try:
        return getattr(__import__(module, fromlist=[cls]), cls)
    except ImportError as err:
        raise TrainingInputError(
            f"{predictor_type} predictors need the {module} package, which is not installed here ({err})"
        ) from None


def autogluon_version(predictor_type: str) -> str:
    from importlib import metadata

    package = {"tabular": "autogluon.tabular", "multimodal": "autogluon.multimodal"}.get(
        predictor_type, "autogluon.timeseries"
    )
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def to_timeseries(frame: Any, options: dict[str, Any]) -> Any:
    from autogluon.timeseries import TimeSeriesDataFrame

    return TimeSeriesDataFrame.from_data_frame(
        frame,
        id_column=options.get("id_column", "item_id"),
        timestamp_column=options.get("timestamp_column", "timestamp"),
    )


def fit(args: dict[str, Any], train: Any, tuning: Any, model_dir: Path) -> tuple[Any, float]:
    predictor_type = args["predictor_type"]
    init_args = dict(args.get("predictor_init_args") or {})
    fit_args = dict(args.get("predictor_fit_args") or {})
    fit_args.pop("train_data", None)
    fit_args.pop("tuning_data", None)
    init_args["path"] = str(model_dir)
    predictor_cls = import_predictor(predictor_type)
    if predictor_type == "timeseries":
        options = args.get("timeseries") or {}
        train = to_timeseries(train, options)
        tuning = to_timeseries(tuning, options) if tuning is not None else None
    log.info("Fitting %s with %s", predictor_cls.__name__, json.dumps(fit_args, sort_keys=True, default=str))
    started = time.monotonic()
    predictor = predictor_cls(**init_args)
    if tuning is not None:
        predictor.fit(train, tuning_data=tuning, **fit_args)
    else:
        predictor.fit(train, **fit_args)
    elapsed = time.monotonic() - started
    if predictor_type == "multimodal":
        # Standalone: serving then needs no access to a model hub.
        predictor.save(str(model_dir), standalone=True)
    return predictor, elapsed


def summarise(args: dict[str, Any], predictor: Any, train: Any, tuning: Any, elapsed: float) -> tuple[dict, Any]:
    predictor_type = args["predictor_type"]
    board = None
    if predictor_type in ("tabular", "timeseries") and args.get("leaderboard", True):
        board = predictor.leaderboard(silent=True)
    label = getattr(predictor, "label", None) or getattr(predictor, "target", None)
    best = getattr(predictor, "model_best", None)
    score_val = None
    if board is not None and best is not None and "score_val" in board.columns:
        rows = board[board["model"] == best]
        if len(rows):
            score_val = float(rows["score_val"].iloc[0])
    metric = getattr(predictor, "eval_metric", None)
    class_labels = getattr(predictor, "class_labels", None) if predictor_type == "tabular" else None
    summary = {
        "predictor_type": predictor_type,
        "label": str(label) if label is not None else None,
        "problem_type": getattr(predictor, "problem_type", None),
        "eval_metric": getattr(metric, "name", None) or (str(metric) if metric is not None else None),
        "best_model": best,
        "score_val": score_val,
        "autogluon_version": autogluon_version(predictor_type),
        "features": [str(f) for f in predictor.original_features] if predictor_type == "tabular" else [],
        "class_labels": [str(c) for c in class_labels] if class_labels is not None else None,
        "num_train_rows": int(len(train)),
        "num_tuning_rows": int(len(tuning)) if tuning is not None else 0,
        "fit_seconds": round(elapsed, 2),
    }
    return summary, board


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_known_args(argv)  # SageMaker passes hyperparameters as --key value; they are in ag_args.json
    model_dir = env_path("SM_MODEL_DIR", "/opt/ml/model")
    output_data = env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    output_dir = env_path("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        if not os.environ.get("SM_CHANNEL_TRAIN_DATA"):
            raise TrainingInputError("SM_CHANNEL_TRAIN_DATA is not set: the train_data channel is missing")
        if not os.environ.get("SM_CHANNEL_AG_ARGS"):
            raise TrainingInputError("SM_CHANNEL_AG_ARGS is not set: the ag_args channel is missing")
        args = load_ag_args(Path(os.environ["SM_CHANNEL_AG_ARGS"]))
        init_args = args.get("predictor_init_args") or {}
        label = init_args.get("target", "target") if args["predictor_type"] == "timeseries" else init_args.get("label")
        train = load_frame(data_file(Path(os.environ["SM_CHANNEL_TRAIN_DATA"]), "train_data"), "train_data")
        check_label(train, label, "train_data")
        tuning = None
        tuning_dir = os.environ.get("SM_CHANNEL_TUNING_DATA")
        if tuning_dir and Path(tuning_dir).is_dir() and any(Path(tuning_dir).iterdir()):
            tuning = load_frame(data_file(Path(tuning_dir), "tuning_data"), "tuning_data")
            check_label(tuning, label, "tuning_data")

        model_dir.mkdir(parents=True, exist_ok=True)
        output_data.mkdir(parents=True, exist_ok=True)
        predictor, elapsed = fit(args, train, tuning, model_dir)
        summary, board = summarise(args, predictor, train, tuning, elapsed)
        log.info(
            "Fit finished in %.1fs; best model %s, %s on validation %s",
            elapsed,
            summary["best_model"],
            summary["eval_metric"],
            summary["score_val"],
        )
        if board is not None:
            board.to_csv(output_data / "leaderboard.csv", index=False)
            log.info("Wrote leaderboard (%d models) to leaderboard.csv", len(board))
        text = json.dumps(summary, indent=2, default=str)
        (output_data / "training_summary.json").write_text(text)
        (model_dir / "training_summary.json").write_text(text)
        code_dir = model_dir / "code"
        code_dir.mkdir(exist_ok=True)
        shutil.copy2(Path(__file__).resolve().parent / "serve.py", code_dir / "serve.py")
        log.info("Copied serve.py into the model's code/ directory")
        return 0
    except Exception as err:
        if isinstance(err, TrainingInputError):
            reason = f"TrainingInputError: {err}"
            log.error("%s", reason)
        else:
            reason = f"{type(err).__name__}: {err}"
            log.error("Training failed:\n%s", traceback.format_exc())
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "failure").write_text(reason[:1000])
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
