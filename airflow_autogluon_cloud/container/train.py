"""AutoGluon training entry script (SageMaker training contract).

Runs unchanged in the AWS AutoGluon training container and under the local backend. Imports only the
standard library, the modules shipped beside it (``ag_kinds.py``...), pandas and AutoGluon.

Inputs (``SM_*`` environment; the defaults are the container layout):
  SM_CHANNEL_TRAIN_DATA   one data file (.csv, .csv.gz, .parquet, .pq, .jsonl, .json)
  SM_CHANNEL_TUNING_DATA  optional: one validation data file
  SM_CHANNEL_AG_ARGS      ag_args.json: predictor type, init and fit arguments
  SM_CHANNEL_PREDICT_DATA, SM_CHANNEL_STATIC_FEATURES optional: a CSV (with a header) to score once
                          the fit is done; static features, one row per item (time series)
Outputs:
  SM_MODEL_DIR            the predictor, training_summary.json, the data baseline (statistics.json,
                          constraints.json) and code/ (serve.py and its modules): it deploys as is
  SM_OUTPUT_DATA_DIR      leaderboard.csv and training_summary.json (output.tar.gz), and with
                          predict data, predictions.jsonl: the batch transform's output format
                          (the prediction, then ``<class>_proba`` columns), scored by serve.py
  SM_OUTPUT_DIR/failure   a one-paragraph reason when the job fails (exit code 1)

ag_args.json: {"version": 1, "predictor_type": ..., "predictor_init_args": {...},
"predictor_fit_args": {...}, "leaderboard": true, "timeseries": {"id_column": ..., "timestamp_column": ...}}
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # the kind modules ship beside this script
    sys.path.append(str(Path(__file__).resolve().parent))
import ag_kinds
import data_profile

SUPPORTED_VERSION = 1
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl", ".json")
AG_ARGS_FILE = "ag_args.json"
SERVE_SCRIPT = "serve.py"
PREDICTIONS_FILE = "predictions.jsonl"
#: Rows per scoring call for the predict data, as the local batch transform's mini-batches.
PREDICT_CHUNK_ROWS = 20_000
MAX_REASON_CHARS = 1000

log = logging.getLogger("ag-train")


class TrainingInputError(ag_kinds.InputError):
    """Bad data or configuration: the job's failure reason, reported without a long story."""


# --------------------------------------------------------------------------- environment


def env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def required_channel(name: str, channel: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise TrainingInputError(f"{name} is not set: the {channel} channel is missing")
    path = Path(value)
    if not path.is_dir():
        raise TrainingInputError(f"the {channel} channel directory {path} does not exist")
    return path


def visible_files(channel_dir: Path) -> list[Path]:
    """Files under ``channel_dir`` (recursively), skipping hidden files and directories."""
    files = []
    for path in channel_dir.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(channel_dir).parts):
            files.append(path)
    return sorted(files)


def optional_channel(name: str) -> Path | None:
    """An optional channel: ``None`` when the variable is unset or the directory is missing or empty."""
    value = os.environ.get(name)
    if not value:
        return None
    path = Path(value)
    if not path.is_dir() or not visible_files(path):
        return None
    return path


# --------------------------------------------------------------------------- inputs


def data_file(channel_dir: Path, channel: str) -> Path:
    files = visible_files(channel_dir)
    if not files:
        raise TrainingInputError(f"the {channel} channel ({channel_dir}) holds no data file")
    if len(files) > 1:
        names = ", ".join(str(p.relative_to(channel_dir)) for p in files[:10])
        more = f" and {len(files) - 10} more" if len(files) > 10 else ""
        raise TrainingInputError(
            f"the {channel} channel holds {len(files)} files ({names}{more}); expected exactly one data file"
        )
    return files[0]


def _read(path: Path) -> Any:
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith(".jsonl"):
        return pd.read_json(path, lines=True)
    if name.endswith(".json"):
        try:
            return pd.read_json(path, lines=True)
        except ValueError:
            return pd.read_json(path)  # a JSON array of records rather than JSON lines
    raise TrainingInputError(f"unsupported file {path.name}; use one of: {', '.join(DATA_SUFFIXES)}")


def load_frame(path: Path, channel: str) -> Any:
    import pandas as pd

    log.info("Loading %s from %s", channel, path)
    started = time.monotonic()
    try:
        frame = _read(path)
    except TrainingInputError:
        raise
    except pd.errors.EmptyDataError:
        raise TrainingInputError(f"{channel} ({path.name}) is empty: it has no rows") from None
    except Exception as err:
        raise TrainingInputError(f"could not read {channel} ({path.name}): {type(err).__name__}: {err}") from None
    if len(frame) == 0:
        raise TrainingInputError(f"{channel} ({path.name}) is empty: it has no rows")
    log.info(
        "Loaded %s: %d rows, %d columns in %.1fs",
        channel,
        len(frame),
        len(frame.columns),
        time.monotonic() - started,
    )
    return frame


def load_ag_args(channel_dir: Path) -> dict[str, Any]:
    path = channel_dir / AG_ARGS_FILE
    if not path.is_file():
        path = data_file(channel_dir, "ag_args")
    log.info("Reading training arguments from %s", path)
    try:
        args = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TrainingInputError(f"{path.name} is not valid JSON: {err}") from None
    if not isinstance(args, dict):
        raise TrainingInputError(f"{path.name} must hold a JSON object, not {type(args).__name__}")
    if args.get("version") != SUPPORTED_VERSION:
        raise TrainingInputError(
            f"{path.name} version {args.get('version')!r} is not supported (this script reads version "
            f"{SUPPORTED_VERSION})"
        )
    if args.get("predictor_type") not in ag_kinds.NAMES:
        raise TrainingInputError(
            f"unknown predictor_type {args.get('predictor_type')!r}; expected one of: {', '.join(ag_kinds.NAMES)}"
        )
    for key in ("predictor_init_args", "predictor_fit_args", "timeseries"):
        if args.get(key) is not None and not isinstance(args[key], dict):
            raise TrainingInputError(f"{path.name}: {key} must be a JSON object, not {type(args[key]).__name__}")
    ag_kinds.get(args["predictor_type"]).check_args(args)
    return args


def check_columns(frame: Any, required: list[tuple[str, str]], channel: str) -> None:
    present = {str(c) for c in frame.columns}
    for role, column in required:
        if column not in present:
            names = [str(c) for c in frame.columns]
            listed = ", ".join(names[:50]) + (f", ... ({len(names)} in all)" if len(names) > 50 else "")
            raise TrainingInputError(f"{role} column {column!r} not found in {channel}; columns are: {listed}")


# --------------------------------------------------------------------------- fitting


def fit(args: dict[str, Any], train: Any, tuning: Any, model_dir: Path, static: Any = None) -> tuple[Any, float]:
    kind = ag_kinds.get(args["predictor_type"])
    init_args = dict(args.get("predictor_init_args") or {})
    fit_args = dict(args.get("predictor_fit_args") or {})
    for key in ("train_data", "tuning_data"):
        if fit_args.pop(key, None) is not None:
            log.warning("Ignoring predictor_fit_args.%s: the data comes from the %s channel", key, key)
    if init_args.get("path") not in (None, str(model_dir)):
        log.warning("Ignoring predictor_init_args.path=%r: the model is written to %s", init_args["path"], model_dir)
    init_args["path"] = str(model_dir)
    predictor_cls = kind.import_predictor()
    kind.check_fit(args, log)
    train = kind.training_data(train, args, static, channel="train_data")
    tuning = kind.training_data(tuning, args, static, channel="tuning_data") if tuning is not None else None

    log.info(
        "Fitting %s with init args %s and fit args %s",
        predictor_cls.__name__,
        json.dumps(init_args, sort_keys=True, default=str),
        json.dumps(fit_args, sort_keys=True, default=str),
    )
    started = time.monotonic()
    predictor = predictor_cls(**init_args)
    if tuning is not None:
        predictor.fit(train, tuning_data=tuning, **fit_args)
    else:
        predictor.fit(train, **fit_args)
    elapsed = time.monotonic() - started
    kind.after_fit(predictor, model_dir, log)
    return predictor, elapsed


# --------------------------------------------------------------------------- outputs


def autogluon_version(predictor_type: str) -> str | None:
    from importlib import metadata

    package = ag_kinds.package_of(predictor_type) or "autogluon.core"
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        pass
    try:
        import autogluon.core

        return str(autogluon.core.__version__)
    except (ImportError, AttributeError):
        return None


def leaderboard(predictor: Any) -> Any:
    try:
        return predictor.leaderboard(silent=True)
    except TypeError:  # a version without the ``silent`` keyword
        return predictor.leaderboard()


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


_attr = ag_kinds.attr


def summarise(
    args: dict[str, Any], predictor: Any, train: Any, tuning: Any, elapsed: float
) -> tuple[dict[str, Any], Any]:
    predictor_type = args["predictor_type"]
    kind = ag_kinds.get(predictor_type)
    board = None
    if kind.leaderboard and args.get("leaderboard", True):
        board = leaderboard(predictor)
    label = _attr(predictor, "label") or _attr(predictor, "target")
    best = _attr(predictor, "model_best")
    score_val = None
    if board is not None and best is not None and "score_val" in board.columns and "model" in board.columns:
        rows = board[board["model"] == best]
        if len(rows):
            score_val = _float_or_none(rows["score_val"].iloc[0])
    metric = _attr(predictor, "eval_metric")
    metric_name = getattr(metric, "name", None) or (str(metric) if metric is not None else None)
    problem_type = _attr(predictor, "problem_type")
    summary: dict[str, Any] = {
        "predictor_type": predictor_type,
        "label": str(label) if label is not None else None,
        "problem_type": str(problem_type) if problem_type is not None else None,
        "eval_metric": str(metric_name) if metric_name is not None else None,
        "best_model": str(best) if best is not None else None,
        "score_val": score_val,
        "autogluon_version": autogluon_version(predictor_type),
        # the names a prediction's ``model`` option may choose from
        "model_names": [str(m) for m in board["model"]] if board is not None and "model" in board.columns else [],
        "num_train_rows": int(len(train)),
        "num_tuning_rows": int(len(tuning)) if tuning is not None else 0,
        "fit_seconds": round(elapsed, 2),
    }
    # features, class labels, a time series' layout (serve.py rebuilds TimeSeriesDataFrames with it)
    summary.update(kind.summary_fields(predictor, args))
    return summary, board


def write_outputs(summary: dict[str, Any], board: Any, model_dir: Path, output_data: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    if board is not None:
        board.to_csv(output_data / "leaderboard.csv", index=False)
        shown = [c for c in ("model", "score_val", "fit_time", "pred_time_val") if c in board.columns]
        log.info("Leaderboard (top 10 of %d):\n%s", len(board), board[shown].head(10).to_string(index=False))
        log.info("Wrote leaderboard (%d models) to %s", len(board), output_data / "leaderboard.csv")
    text = json.dumps(summary, indent=2, default=str)
    for directory in (output_data, model_dir):
        (directory / "training_summary.json").write_text(text, encoding="utf-8")
    log.info("Wrote training_summary.json to %s and %s", output_data, model_dir)


def serve_script() -> Path:
    path = Path(__file__).resolve().parent / SERVE_SCRIPT
    if not path.is_file():
        raise TrainingInputError(f"the serving script {path} is missing: it must sit next to train.py")
    return path


def install_serve_script(source: Path, model_dir: Path) -> None:
    code_dir = model_dir / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, code_dir / SERVE_SCRIPT)
    for module in ag_kinds.CODE_MODULES:  # what serve.py imports, beside it
        shutil.copy2(source.parent / module, code_dir / module)
    log.info("Copied %s to %s: model.tar.gz deploys without repacking", SERVE_SCRIPT, code_dir / SERVE_SCRIPT)


def score_predict_data(source: Path, model_dir: Path, data: Path, output_data: Path, static: Any = None) -> int:
    """Score ``data`` with the fitted model through the serving script, as a batch transform would.

    Each mini-batch of lines goes through ``serve.py``'s ``transform_fn`` (``text/csv`` in,
    ``application/jsonl`` out), so the output is the batch transform's, to the byte. A kind whose
    requests hold whole series (``whole_predict_data``) sends the whole file as one request, with
    the ``static`` features: the forecast of the next horizon of every series. Written to a
    temporary file first: a job that fails halfway leaves no partial predictions.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("ag_serve_in_training", source)
    if spec is None or spec.loader is None:
        raise TrainingInputError(f"could not load the serving script {source}")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    model = serve.model_fn(str(model_dir))
    log.info("Scoring predict_data (%s) with the fitted model", data.name)
    started = time.monotonic()
    target = output_data / PREDICTIONS_FILE
    partial = output_data / f".{PREDICTIONS_FILE}.partial"
    rows = 0
    if model.kind.whole_predict_data:
        text = model.kind.answer_whole(serve, model, load_frame(data, "predict_data"), static, TrainingInputError)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
        return sum(1 for line in text.splitlines() if line.strip())

    def flush(out: Any, header: str, lines: list[str]) -> None:
        try:
            answer, _ = serve.transform_fn(model, header + "".join(lines), "text/csv", "application/jsonl")
        except serve.BadRequestError as err:
            raise TrainingInputError(f"predict_data rows {rows + 1}-{rows + len(lines)}: {err}") from None
        text = answer.decode() if isinstance(answer, bytes) else answer
        out.write(text if text.endswith("\n") else text + "\n")

    with open(data, encoding="utf-8", newline="") as fh, open(partial, "w", encoding="utf-8") as out:
        header = fh.readline()
        lines: list[str] = []
        for line in fh:
            if not line.strip():
                continue
            lines.append(line)
            if len(lines) >= PREDICT_CHUNK_ROWS:
                flush(out, header, lines)
                rows += len(lines)
                lines = []
        if lines:
            flush(out, header, lines)
            rows += len(lines)
    if rows == 0:
        partial.unlink()
        raise TrainingInputError(f"predict_data ({data.name}) is empty: it has no rows")
    os.replace(partial, target)
    log.info("Scored %d rows of predict_data in %.1fs; wrote %s", rows, time.monotonic() - started, target)
    return rows


def failure_reason(err: BaseException) -> str:
    """One paragraph: the exception type and message on a single line, at most 1000 characters."""
    message = " ".join(str(err).split()) or "(no message)"
    reason = f"{type(err).__name__}: {message}"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def write_failure(output_dir: Path, reason: str) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "failure").write_text(reason, encoding="utf-8")
    except OSError as err:
        log.error("Could not write the failure file in %s: %s", output_dir, err)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> list[str]:
    # The SageMaker toolkit passes hyperparameters as ``--key value``: everything is in ag_args.json.
    # No options of our own, no help and no abbreviations, so no hyperparameter can be mistaken for one.
    parser = argparse.ArgumentParser(description="AutoGluon training entry script", add_help=False, allow_abbrev=False)
    _, ignored = parser.parse_known_args(argv)
    return ignored


def run(argv: list[str] | None, model_dir: Path, output_data: Path) -> None:
    ignored = parse_args(argv)
    if ignored:
        log.info("Ignoring command-line arguments %s: training arguments come from ag_args.json", ignored)
    ag_args_dir = required_channel("SM_CHANNEL_AG_ARGS", "ag_args")
    train_dir = required_channel("SM_CHANNEL_TRAIN_DATA", "train_data")
    tuning_dir = optional_channel("SM_CHANNEL_TUNING_DATA")
    predict_dir = optional_channel("SM_CHANNEL_PREDICT_DATA")
    static_dir = optional_channel("SM_CHANNEL_STATIC_FEATURES")
    try:
        num_gpus = int(os.environ.get("SM_NUM_GPUS") or 0)
    except ValueError:
        num_gpus = 0
    log.info("Model directory %s, output data directory %s, %d GPU(s)", model_dir, output_data, num_gpus)

    args = load_ag_args(ag_args_dir)
    predictor_type = args["predictor_type"]
    kind = ag_kinds.get(predictor_type)
    source = serve_script()  # fail before fitting, not after
    kind.import_predictor()  # likewise: a missing package is reported at once
    label, required = kind.label(args), kind.required_columns(args)
    log.info("Predictor type %s, label %r", predictor_type, label)
    predict_file = data_file(predict_dir, "predict_data") if predict_dir is not None else None
    if predict_file is not None and not predict_file.name.lower().endswith(".csv"):
        raise TrainingInputError(f"predict_data must be one CSV file with a header, not {predict_file.name}")

    train = load_frame(data_file(train_dir, "train_data"), "train_data")
    check_columns(train, required, "train_data")
    tuning = None
    if tuning_dir is not None:
        tuning = load_frame(data_file(tuning_dir, "tuning_data"), "tuning_data")
        check_columns(tuning, required, "tuning_data")
    else:
        log.info("No tuning_data channel: AutoGluon holds out validation data from train_data")

    static = load_frame(data_file(static_dir, "static_features"), "static_features") if static_dir else None
    output_data.mkdir(parents=True, exist_ok=True)
    predictor, elapsed = fit(args, train, tuning, model_dir, static)
    summary, board = summarise(args, predictor, train, tuning, elapsed)
    profiled = kind.baseline_frames(predictor, train, tuning)  # the model's baseline (data_profile.py)
    if profiled is not None:
        dirs = (output_data, model_dir)
        summary["baseline_seconds"] = data_profile.write_baseline_files(*profiled, tuning is not None, dirs)
    log.info(
        "Fit finished in %.1fs; best model %s, score_val %s (%s, higher is better)",
        elapsed,
        summary["best_model"],
        summary["score_val"],
        summary["eval_metric"],
    )
    write_outputs(summary, board, model_dir, output_data)
    install_serve_script(source, model_dir)
    if predict_file is not None:
        # Scored by the installed copy: the same serve.py the endpoint and the batch transform run.
        rows = score_predict_data(model_dir / "code" / SERVE_SCRIPT, model_dir, predict_file, output_data, static)
        # The job's summary (output.tar.gz) says where they are; the model's own copy is about the model.
        summary["predictions"] = {"file": PREDICTIONS_FILE, "rows": rows}
        text = json.dumps(summary, indent=2, default=str)
        (output_data / "training_summary.json").write_text(text, encoding="utf-8")
    log.info("Training complete")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, force=True
    )
    model_dir = env_path("SM_MODEL_DIR", "/opt/ml/model")
    output_data = env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    output_dir = env_path("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        run(argv, model_dir, output_data)
        return 0
    except Exception as err:
        if isinstance(err, ag_kinds.InputError) and not isinstance(err, TrainingInputError):
            err = TrainingInputError(str(err))  # a kind's complaint about the input, reported as one
        reason = failure_reason(err)
        if isinstance(err, TrainingInputError):
            log.error("Training failed: %s", err)
            log.debug("Traceback:\n%s", traceback.format_exc())
        else:
            log.error("Training failed: %s\n%s", reason, traceback.format_exc())
        write_failure(output_dir, reason)
        return 1


if __name__ == "__main__":
    sys.exit(main())
