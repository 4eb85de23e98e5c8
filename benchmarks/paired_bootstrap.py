"""What the paired statistics add to an evaluation job: 1000 paired stratified bootstrap resamples
of 100,000 rows of binary predictions (``container/paired_stats.py``, as ``evaluate.py`` runs it).

Runs standalone (``python benchmarks/paired_bootstrap.py``) and writes its numbers to
``benchmarks/paired_bootstrap.json``. Each figure is the median of ``--repeats`` runs with its
min-max, in wall seconds and in CPU seconds of this process (NumPy here runs on one core; on a
shared machine the wall time also counts waiting for it, the CPU time does not).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
MODULE = BENCH_DIR.parent / "airflow_autogluon_cloud" / "container" / "paired_stats.py"


def load_paired_stats():
    sys.path.insert(0, str(MODULE.parent))  # paired_stats imports paired_tests, beside it
    spec = importlib.util.spec_from_file_location("paired_stats", MODULE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paired_stats"] = module
    spec.loader.exec_module(module)
    return module


def predictions(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(int)
    out = []
    for strength in (1.2, 1.3):
        score = 1 / (1 + np.exp(-(strength * (2 * y - 1) + rng.normal(0, 1, rows))))
        out.append(((score > 0.5).astype(int), score))
    return y, out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(BENCH_DIR / "paired_bootstrap.json"))
    options = parser.parse_args()
    ps = load_paired_stats()
    y, models = predictions(options.rows)
    rows = [ps.ModelRows(pred, proba) for pred, proba in models]
    strata = [np.flatnonzero(y == c) for c in (0, 1)]
    figures: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for metric in ("accuracy", "log_loss", "roc_auc"):
        functions = tuple(ps.metric_function(metric, "binary", y, r, 2) for r in rows)
        for _ in range(options.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            differences = ps.bootstrap_differences(functions, len(y), strata, options.resamples, seed=0)
            figures.setdefault(metric, []).append(time.perf_counter() - start)
            cpu.setdefault(metric, []).append(time.process_time() - start_cpu)
            assert len(differences) == options.resamples
    # the whole comparison evaluate.py makes for a binary model: 8 metrics, DeLong and McNemar
    metrics = ["accuracy", "balanced_accuracy", "mcc", "roc_auc", "f1", "precision", "recall", "log_loss"]
    everywhere = np.ones((1, len(y)))
    scores = {
        key: {m: float(ps.metric_function(m, "binary", y, r, 2)(everywhere)[0]) for m in metrics}
        for key, r in zip(("model", "baseline"), rows, strict=True)
    }
    everything = "all 8 binary metrics + DeLong + McNemar"
    for _ in range(options.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        ps.compare(
            problem_type="binary",
            y=y,
            model=rows[0],
            baseline=rows[1],
            metrics=metrics,
            scores=scores,
            n_resamples=options.resamples,
        )
        figures.setdefault(everything, []).append(time.perf_counter() - start)
        cpu.setdefault(everything, []).append(time.process_time() - start_cpu)
    result = {
        "rows": options.rows,
        "resamples": options.resamples,
        "repeats": options.repeats,
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "processor": platform.machine()},
        "seconds": {name: _spread(v) for name, v in figures.items()},
        "cpu_seconds": {name: _spread(v) for name, v in cpu.items()},
    }
    Path(options.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
