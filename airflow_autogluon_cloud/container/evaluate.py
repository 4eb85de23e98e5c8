"""AutoGluon evaluation entry script (SageMaker training contract): score models on one labelled dataset.

Runs inside the AWS AutoGluon training container as a training job's entry point, and on this
machine under the local backend, unchanged. Self-contained: imports only the standard library,
the predictor-kind modules shipped beside it (``ag_kinds.py``: how each kind is loaded and scored),
pandas and AutoGluon. Every model is scored on **the same** rows with AutoGluon's own scorers
(``autogluon.core.metrics``), so the numbers are comparable, unlike each fit's own validation score.

Inputs (``SM_*`` environment; the defaults are the container layout):
  SM_CHANNEL_EVAL_DATA    one labelled data file (.csv, .csv.gz, .parquet, .pq, .jsonl, .json)
  SM_CHANNEL_EVAL_ARGS    eval_args.json (below)
  SM_CHANNEL_MODEL_<KEY>  one per model: its model.tar.gz (as SageMaker delivers a channel), or the
                          archive already unpacked (as the local backend delivers it)
Outputs:
  SM_OUTPUT_DATA_DIR/evaluation.json   the report (output.tar.gz)
  SM_OUTPUT_DATA_DIR/predictions.parquet  every model's per-row predictions, keyed by ``row``
  SM_OUTPUT_DIR/failure                a one-paragraph reason when the job fails (exit code 1)

eval_args.json::

  {"version": 1, "label": "churned", "problem_type": "binary", "eval_metric": "roc_auc",
   "metrics": ["roc_auc", "accuracy", ...], "models": {"challenger": "model_challenger", ...},
   "baseline": "champion", "slices": ["region"], "n_resamples": 1000, "seed": 0}   # optional

evaluation.json::

  {"version": 1, "label": ..., "problem_type": ..., "eval_metric": "roc_auc", "higher_is_better": true,
   "num_rows": 200, "class_counts": {"0": 150, "1": 50},
   "metric_directions": {"roc_auc": true, "log_loss": false},
   "models": {"challenger": {"metrics": {"roc_auc": 0.91, ...}, "autogluon_version": "1.4.0",
                             "best_model": "LightGBM", "score_val": 0.93}}}

With a ``baseline`` model, ``comparisons`` holds each other model's paired statistics against it
(``paired_stats.py``: bootstrap intervals, DeLong, McNemar; per slice too).

Metric values are in the metric's own units (``log_loss`` and errors are positive, lower is
better); ``metric_directions`` says which way each one improves.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tarfile
import traceback
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # the kind modules ship beside this script
    sys.path.append(str(Path(__file__).resolve().parent))
import ag_kinds
import paired_stats  # shipped beside this script

SUPPORTED_VERSION = 1
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl", ".json")
EVAL_ARGS_FILE = "eval_args.json"
REPORT_FILE = "evaluation.json"
EVIDENCE_FILE = "predictions.parquet"
MAX_REASON_CHARS = 1000
CLASSIFICATION = ("binary", "multiclass")

log = logging.getLogger("ag-evaluate")


class EvaluationInputError(ag_kinds.InputError):
    """Bad data or arguments: the job's failure reason, reported without a long story."""


def env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def channel_dir(variable: str, channel: str) -> Path:
    path = env_path(variable, f"/opt/ml/input/data/{channel}")
    if not path.is_dir():
        raise EvaluationInputError(f"the {channel} channel is missing ({variable}={path})")
    return path


def data_file(directory: Path) -> Path:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    candidates = [p for p in files if p.name.lower().endswith(DATA_SUFFIXES)]
    if len(candidates) != 1:
        raise EvaluationInputError(
            f"the eval_data channel must hold exactly one data file ({', '.join(DATA_SUFFIXES)}); found "
            f"{[p.name for p in files]}"
        )
    return candidates[0]


def load_frame(path: Path) -> Any:
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".jsonl", ".json")):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def load_args(directory: Path) -> dict[str, Any]:
    path = directory / EVAL_ARGS_FILE
    if not path.is_file():
        raise EvaluationInputError(f"{EVAL_ARGS_FILE} is missing from the eval_args channel")
    args = json.loads(path.read_text(encoding="utf-8"))
    if args.get("version") != SUPPORTED_VERSION:
        raise EvaluationInputError(f"{EVAL_ARGS_FILE} version {args.get('version')!r} is not {SUPPORTED_VERSION}")
    for key in ("label", "problem_type", "eval_metric", "models"):
        if not args.get(key):
            raise EvaluationInputError(f"{EVAL_ARGS_FILE} has no {key!r}")
    return args


def unpack_model(directory: Path) -> Path:
    """The predictor directory of a model channel, unpacking a ``model.tar.gz`` found there safely."""
    archives = sorted(directory.glob("*.tar.gz"))
    if not archives:
        return directory
    target = directory / "predictor"
    target.mkdir(exist_ok=True)
    with tarfile.open(archives[0], "r:*") as tar:
        for member in tar.getmembers():
            resolved = (target / member.name).resolve()
            if member.issym() or member.islnk() or not resolved.is_relative_to(target.resolve()):
                raise EvaluationInputError(f"{archives[0].name} has an unsafe member {member.name!r}")
        tar.extractall(target, filter="data")
    return target


def load_predictor(path: Path, kind: Any) -> Any:
    return ag_kinds.load_with(kind.import_predictor(), str(path))


def read_summary(path: Path) -> dict[str, Any]:
    summary = path / "training_summary.json"
    return json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}


def evaluate(args: dict[str, Any], frame: Any, model_dirs: dict[str, Path]) -> dict[str, Any]:
    label, problem_type = args["label"], args["problem_type"]
    kind = ag_kinds.get(args.get("predictor_type"))
    metrics = list(dict.fromkeys([args["eval_metric"], *args.get("metrics", [])]))
    if label not in frame.columns:
        raise EvaluationInputError(f"the label column {label!r} is not in the data (columns: {list(frame.columns)})")
    frame = kind.evaluation_rows(frame, label)
    if not len(frame):
        raise EvaluationInputError(f"no row of the data has a value in the label column {label!r}")
    report: dict[str, Any] = {
        "version": SUPPORTED_VERSION,
        "label": label,
        "problem_type": problem_type,
        "eval_metric": args["eval_metric"],
        "metric_directions": kind.directions(problem_type, metrics),
        "num_rows": int(len(frame)),
        "class_counts": None,
        "models": {},
    }
    report["higher_is_better"] = report["metric_directions"][args["eval_metric"]]
    if problem_type in CLASSIFICATION:
        counts = frame[label].astype(str).value_counts().sort_index()
        report["class_counts"] = {str(k): int(v) for k, v in counts.items()}
    evidence: dict[str, dict[str, Any]] = {}
    for key, directory in sorted(model_dirs.items()):
        path = unpack_model(directory)
        predictor = load_predictor(path, kind)
        summary = read_summary(path)
        kind.check_evaluated(key, predictor, args)
        labels = getattr(predictor, "class_labels", None)  # a list, or an array (multimodal)
        evidence[key] = {"class_labels": list(labels) if labels is not None else []}
        scores = kind.evaluate(predictor, frame, args, metrics, evidence[key])
        log.info("Model %s on %d rows: %s", key, len(frame), json.dumps(scores))
        report["models"][key] = {
            "metrics": scores,
            "autogluon_version": summary.get("autogluon_version"),
            "best_model": kind.best_model(predictor),
            "score_val": summary.get("score_val"),
        }
    if kind.paired_statistics:  # per-row evidence: rows scored independently (not forecasts)
        add_paired_statistics(report, args, frame, evidence, metrics)
    return report


# ---- paired statistics (paired_stats.py): kept apart from the scoring above --------------------


def add_paired_statistics(
    report: dict[str, Any], args: dict[str, Any], frame: Any, evidence: dict[str, dict[str, Any]], metrics: list[str]
) -> None:
    """Put each model's comparison with the baseline in ``report``; keep the per-row evidence for writing."""
    import numpy as np

    missing = [c for c in args.get("slices") or [] if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"slice columns {missing} are not in the data (columns: {list(frame.columns)})")
    slices = {str(c): frame[c].to_numpy() for c in args.get("slices") or []}
    y = next(iter(evidence.values()))["y"] if evidence else np.array([])
    rows = {k: paired_stats.ModelRows(e["pred"], e["proba"]) for k, e in evidence.items()}
    n_resamples = int(args.get("n_resamples") or paired_stats.DEFAULT_RESAMPLES)
    seed = int(args.get("seed") or paired_stats.DEFAULT_SEED)
    report["comparisons"] = paired_stats.comparisons(
        problem_type=report["problem_type"],
        y=y,
        rows=rows,
        scores={k: m["metrics"] for k, m in report["models"].items()},
        metrics=metrics,
        baseline=str(args.get("baseline") or "champion"),
        slices=slices,
        n_resamples=n_resamples,
        seed=seed,
    )
    report["slices"] = sorted(slices)
    report["evidence_file"] = EVIDENCE_FILE
    labels = next(iter(evidence.values()))["class_labels"] if evidence else None
    report["_evidence"] = paired_stats.evidence_frame(y, rows, labels, slices)


def run(argv: list[str] | None, output_data: Path) -> None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _, ignored = parser.parse_known_args(argv)
    if ignored:
        log.info("Ignoring command-line arguments %s: evaluation arguments come from %s", ignored, EVAL_ARGS_FILE)
    args = load_args(channel_dir("SM_CHANNEL_EVAL_ARGS", "eval_args"))
    frame = load_frame(data_file(channel_dir("SM_CHANNEL_EVAL_DATA", "eval_data")))
    model_dirs = {key: channel_dir(f"SM_CHANNEL_{channel.upper()}", channel) for key, channel in args["models"].items()}
    static_dir = env_path("SM_CHANNEL_STATIC_FEATURES", "/opt/ml/input/data/static_features")
    if static_dir.is_dir() and any(static_dir.iterdir()):  # a time series' static features, for its kind
        args["_static_features"] = load_frame(data_file(static_dir))
    log.info("Evaluating %d model(s) on %d rows (metric %s)", len(model_dirs), len(frame), args["eval_metric"])
    report = evaluate(args, frame, model_dirs)
    output_data.mkdir(parents=True, exist_ok=True)
    evidence = report.pop("_evidence", None)
    if evidence is not None:
        evidence.to_parquet(output_data / EVIDENCE_FILE, index=False)
    partial = output_data / f".{REPORT_FILE}.partial"
    partial.write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(partial, output_data / REPORT_FILE)
    log.info("Wrote %s", output_data / REPORT_FILE)


def failure_reason(err: BaseException) -> str:
    message = " ".join(str(err).split()) or "(no message)"
    reason = f"{type(err).__name__}: {message}"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, force=True
    )
    output_data = env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    output_dir = env_path("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        run(argv, output_data)
        return 0
    except Exception as err:
        if isinstance(err, ag_kinds.InputError) and not isinstance(err, EvaluationInputError):
            err = EvaluationInputError(str(err))  # a kind's complaint about the input, reported as one
        reason = failure_reason(err)
        log.error("Evaluation failed: %s\n%s", reason, traceback.format_exc())
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "failure").write_text(reason, encoding="utf-8")
        except OSError as write_err:
            log.error("Could not write the failure file: %s", write_err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
