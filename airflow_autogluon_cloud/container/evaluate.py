"""AutoGluon evaluation entry script (SageMaker training contract): score models on one labelled dataset.

Runs inside the AWS AutoGluon training container as a training job's entry point, and on this
machine under the local backend, unchanged. Self-contained: imports only the standard library,
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
import math
import os
import sys
import tarfile
import traceback
from pathlib import Path
from typing import Any

import paired_stats  # shipped beside this script

SUPPORTED_VERSION = 1
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl", ".json")
EVAL_ARGS_FILE = "eval_args.json"
REPORT_FILE = "evaluation.json"
EVIDENCE_FILE = "predictions.parquet"
MAX_REASON_CHARS = 1000
CLASSIFICATION = ("binary", "multiclass")

log = logging.getLogger("ag-evaluate")


class EvaluationInputError(Exception):
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


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def score_model(
    predictor: Any,
    frame: Any,
    label: str,
    problem_type: str,
    metrics: list[str],
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Each metric of ``metrics`` for one predictor on ``frame``, in the metric's own units.

    :param evidence: filled with the per-row labels, predictions and probabilities (internal encoding).
    """
    from autogluon.core.metrics import compute_metric, get_metric

    features = frame.drop(columns=[label])
    y_true = frame[label]
    classification = problem_type in CLASSIFICATION
    y_internal = predictor.transform_labels(y_true) if classification else y_true
    y_pred = predictor.predict(features)
    y_pred_internal = predictor.transform_labels(y_pred) if classification else y_pred
    y_proba = None
    if classification:
        proba = predictor.predict_proba(features, as_multiclass=problem_type == "multiclass")
        y_proba = proba.to_numpy() if hasattr(proba, "to_numpy") else proba
    if evidence is not None:
        evidence.update(y=y_internal.to_numpy(), pred=y_pred_internal.to_numpy(), proba=y_proba)
    scores: dict[str, float | None] = {}
    for name in metrics:
        scorer = get_metric(name, problem_type, "metric")
        if (scorer.needs_proba or scorer.needs_threshold) and y_proba is None:
            needs = {"y_pred": y_pred_internal.to_numpy()}
        elif scorer.needs_proba or scorer.needs_threshold:
            needs = {"y_pred_proba": y_proba}
        else:
            needs = {"y_pred": y_pred_internal.to_numpy()}
        score = compute_metric(y_internal.to_numpy(), scorer, silent=True, **needs)
        scores[name] = finite(scorer.convert_score_to_original(score))
    return scores


def directions(problem_type: str, metrics: list[str]) -> dict[str, bool]:
    from autogluon.core.metrics import get_metric

    return {name: bool(get_metric(name, problem_type, "metric").greater_is_better_internal) for name in metrics}


def load_predictor(path: Path) -> Any:
    from autogluon.tabular import TabularPredictor

    return TabularPredictor.load(str(path), require_py_version_match=False)


def read_summary(path: Path) -> dict[str, Any]:
    summary = path / "training_summary.json"
    return json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}


def evaluate(args: dict[str, Any], frame: Any, model_dirs: dict[str, Path]) -> dict[str, Any]:
    label, problem_type = args["label"], args["problem_type"]
    metrics = list(dict.fromkeys([args["eval_metric"], *args.get("metrics", [])]))
    if label not in frame.columns:
        raise EvaluationInputError(f"the label column {label!r} is not in the data (columns: {list(frame.columns)})")
    frame = frame[frame[label].notna()]
    if not len(frame):
        raise EvaluationInputError(f"no row of the data has a value in the label column {label!r}")
    report: dict[str, Any] = {
        "version": SUPPORTED_VERSION,
        "label": label,
        "problem_type": problem_type,
        "eval_metric": args["eval_metric"],
        "metric_directions": directions(problem_type, metrics),
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
        predictor = load_predictor(path)
        summary = read_summary(path)
        if str(predictor.label) != label or str(predictor.problem_type) != problem_type:
            raise EvaluationInputError(
                f"model {key!r} predicts {predictor.label!r} ({predictor.problem_type}), not {label!r} ({problem_type})"
            )
        evidence[key] = {"class_labels": list(getattr(predictor, "class_labels", None) or [])}
        scores = score_model(predictor, frame, label, problem_type, metrics, evidence[key])
        log.info("Model %s on %d rows: %s", key, len(frame), json.dumps(scores))
        report["models"][key] = {
            "metrics": scores,
            "autogluon_version": summary.get("autogluon_version"),
            "best_model": str(predictor.model_best),
            "score_val": summary.get("score_val"),
        }
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
