"""Data checks: their cost on a batch job, and the baseline's cost on a fit (not part of the suite).

Run: ``.venv/bin/python benchmarks/data_checks.py [rows] [repeats]`` (default 2,000,000 rows, 3
repeats). Writes ``benchmarks/data_checks.json``.

* **Batch throughput, checks on against off.** The same local batch job (the bundled churn
  model, 2 workers) on the same CSV, with ``data_checks`` on (every request profiled in the
  serving script, one sketch written per mini-batch, the host's merge and comparison after the
  job) and off, interleaved. Throughput is rows over the whole time from submission to the report
  being written (the checks' merge included); the target is on/off >= 0.9.
* **Per request, in one process.** The serving script's ``transform_fn`` on the same 20,000-row
  mini-batches (the local job's size) with the profiler on and off, interleaved request by
  request (robust to a busy machine): the same ratio, without the job's other costs.
* **Baseline on a fit.** The share of a fit's job time that the baseline took (``baseline_seconds``
  in the training summary against the job's wall seconds), on the churn data at ``fit_rows``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_scoring import make_input
from common import bench_hook, log, median, trained_model

OUT = Path(__file__).resolve().parent / "data_checks.json"


def run_batch(hook, model_uri: str, path: Path, checks: bool) -> dict[str, float]:
    name = f"ag-af-bench-dq-{'on' if checks else 'off'}-{int(time.time() * 1000) % 10**9}"
    started = time.time()
    hook.start_batch_predict(
        job_name=name, model_uri=model_uri, test_data=str(path), instance_count=2, data_checks=checks
    )
    hook.wait_for_job("transform", name, check_interval=0.5, max_check_interval=0.5, stream_log=False)
    report = hook.batch.data_report(name) if checks else {}
    elapsed = time.time() - started
    record = hook.backend.store.get("transform", name)
    rows = record.data["rows"]
    hook.cleanup_batch_model(name)
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed, "violations": report.get("violations")}


def per_request(model_uri: str, path: Path, rounds: int = 5) -> dict[str, float]:
    """``transform_fn`` with and without the profiler, alternating on the same mini-batches."""
    import importlib.util
    import os
    import tarfile
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="dq-bench-"))
    with tarfile.open(model_uri) as tar:
        tar.extractall(directory / "model", filter="data")
    code = directory / "model" / "code"
    sys.path.insert(0, str(code))
    spec = importlib.util.spec_from_file_location("serve_bench", code / "serve.py")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    os.environ["AG_DATA_PROFILE_URI"] = str(directory / "profile")
    model = serve.model_fn(str(directory / "model"))
    profiler = model.profiler
    with open(path) as fh:
        header = fh.readline()
        bodies = [header + "".join(next(fh) for _ in range(20_000)) for _ in range(10)]
    times = {"on": 0.0, "off": 0.0}
    for i in range(rounds):
        for body in bodies:
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                model.profiler = profiler if mode == "on" else None
                started = time.perf_counter()
                serve.transform_fn(model, body, "text/csv", "application/jsonl")
                times[mode] += time.perf_counter() - started
    return {
        "requests": rounds * len(bodies),
        "rows_per_request": 20_000,
        "seconds_on": round(times["on"], 3),
        "seconds_off": round(times["off"], 3),
        "throughput_ratio_on_over_off": round(times["off"] / times["on"], 3),
    }


def baseline_share(hook, rows: int) -> dict[str, float]:
    from airflow_autogluon_cloud.example_data import make_churn

    name = f"ag-af-bench-dq-fit-{int(time.time()) % 10**6}"
    hook.start_training(
        job_name=name,
        train_data=make_churn(rows, seed=5),
        predictor_init_args={"label": "churned"},
        predictor_fit_args={"time_limit": 60, "hyperparameters": {"GBM": {}, "CAT": {}, "XGB": {}}},
    )
    hook.wait_for_job("training", name, check_interval=1, max_check_interval=2, stream_log=False)
    result = hook.training_result(name)
    summary = hook.training.summary(hook.describe_job("training", name))
    wall = result["usage"]["wall_seconds"]
    return {
        "fit_rows": rows,
        "baseline_seconds": summary["baseline_seconds"],
        "fit_seconds": summary["fit_seconds"],
        "job_wall_seconds": wall,
        "share_of_job": summary["baseline_seconds"] / wall,
        "share_of_fit": summary["baseline_seconds"] / summary["fit_seconds"],
    }


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    hook = bench_hook()
    model_uri = trained_model()["model_artifact_uri"]
    path = make_input(rows)
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for i in range(repeats):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            runs[mode].append(run_batch(hook, model_uri, path, mode == "on"))
            log("batch %s: %.0f rows/s", mode, runs[mode][-1]["rows_per_s"])
    on, off = median([r["rows_per_s"] for r in runs["on"]]), median([r["rows_per_s"] for r in runs["off"]])
    request = per_request(model_uri, path)
    log("per request: on/off throughput %.3f", request["throughput_ratio_on_over_off"])
    fit = baseline_share(hook, 100_000)
    results = {
        "rows": rows,
        "repeats": repeats,
        "rows_per_s_checks_on": round(on, 1),
        "rows_per_s_checks_off": round(off, 1),
        "ratio_on_over_off": round(on / off, 3),
        "target_ratio": 0.9,
        "runs": runs,
        "per_request": request,
        "baseline": fit,
        "target_baseline_share": 0.05,
    }
    OUT.write_text(json.dumps(results, indent=2))
    log(
        "checks on/off: %.3f (target >= 0.9); baseline %.1f%% of the fit job (target <= 5%%)",
        on / off,
        100 * fit["share_of_job"],
    )


if __name__ == "__main__":
    main()
