"""5. Batch scoring: rows per second and peak memory of a local batch job at 100k and 1M rows.

The job is timed from ``start_batch_predict`` (staging included) until a 100 ms status poll sees
it ``Completed`` (model extraction, worker start-up and writing the output included), with
the summed RSS of its process tree sampled every 100 ms. The limit it is compared with is
``predictor.predict`` on the same rows already in a DataFrame, in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import WORK, TreeMemorySampler, bench_hook, log, median, trained_model


def make_input(rows: int) -> Path:
    from airflow_autogluon_cloud.example_data import make_churn

    path = WORK / f"batch-{rows}.csv"
    if not path.exists():
        log("batch: writing %d rows of CSV", rows)
        tmp = path.with_suffix(".partial")
        make_churn(rows, seed=rows, with_label=False).to_csv(tmp, index=False)
        os.replace(tmp, path)
    return path


def run_job(hook: Any, model_uri: str, path: Path, workers: int) -> dict[str, Any]:
    name = f"ag-af-bench-batch-{int(time.time() * 1000) % 10**9}"
    sampler = TreeMemorySampler().start()
    t0 = time.perf_counter()
    hook.start_batch_predict(job_name=name, model_uri=model_uri, test_data=str(path), instance_count=workers)
    record = hook.backend.store.get("transform", name)
    if record is not None and record.pid:
        sampler.watch(record.pid)
    hook.wait_for_job("transform", name, check_interval=0.1, max_check_interval=0.1, stream_log=False)
    wall = time.perf_counter() - t0
    peak = sampler.stop()
    desc = hook.describe_job("transform", name)
    hook.cleanup_batch_model(name)
    if desc.artifact_uri:  # the scored output; only its timing matters here
        shutil.rmtree(desc.artifact_uri, ignore_errors=True)
    return {"wall_s": wall, "peak_rss_mb": peak / 2**20}


def inprocess(predictor: Any, path: Path) -> dict[str, Any]:
    """``predictor.predict`` on the rows already in a DataFrame (the limit), and, for context, the
    same done end to end in one process: read the CSV, predict, write the predictions as CSV."""
    import pandas as pd

    t0 = time.perf_counter()
    frame = pd.read_csv(path)
    t1 = time.perf_counter()
    predictions = predictor.predict(frame)
    t2 = time.perf_counter()
    predictions.to_csv(WORK / "inprocess-predictions.csv", index=False)
    t3 = time.perf_counter()
    return {
        "seconds": t2 - t1,
        "end_to_end_seconds": t3 - t0,
        "frame_mb": frame.memory_usage(deep=True).sum() / 2**20,
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = [20_000, 100_000] if quick else [100_000, 1_000_000]
    repeats = 1 if quick else 3
    workers = os.cpu_count() or 1
    model = trained_model()
    hook = bench_hook()
    predictor_dir = WORK / "batch-predictor"
    shutil.rmtree(predictor_dir, ignore_errors=True)
    predictor = hook.to_local_predictor(model["model_artifact_uri"], predictor_dir)
    predictor.persist()
    rows: dict[str, Any] = {}
    for size in sizes:
        path = make_input(size)
        jobs, limits = [], []
        for i in range(repeats):
            log("batch: %d rows, job %d/%d (%d workers)", size, i + 1, repeats, workers)
            jobs.append(run_job(hook, model["model_artifact_uri"], path, workers))
            log("batch: %d rows, in-process %d/%d", size, i + 1, repeats)
            limits.append(inprocess(predictor, path))
        job_wall = median([j["wall_s"] for j in jobs])
        limit_s = median([x["seconds"] for x in limits])
        rows[str(size)] = {
            "rows": size,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "job_rows_per_s": round(size / job_wall),
            "in_process_rows_per_s": round(size / limit_s),
            "ratio_to_in_process": round(limit_s / job_wall, 3),
            "in_process_end_to_end_rows_per_s": round(size / median([x["end_to_end_seconds"] for x in limits])),
            "job_peak_rss_mb": round(median([j["peak_rss_mb"] for j in jobs])),
            "in_process_frame_mb": round(limits[0]["frame_mb"]),
            "job_wall_s_samples": [round(j["wall_s"], 2) for j in jobs],
        }
    small, large = rows[str(sizes[0])], rows[str(sizes[-1])]
    growth = large["job_peak_rss_mb"] / small["job_peak_rss_mb"]
    # Two sizes give the job's fixed cost (start-up: processes, imports, model load) and its
    # marginal rate once running, by a straight line through the two medians.
    w_small, w_large = (median(r["job_wall_s_samples"]) for r in (small, large))
    per_row = (w_large - w_small) / (large["rows"] - small["rows"])
    fixed = w_small - per_row * small["rows"]
    return {
        "workers": workers,
        "repeats": repeats,
        "rows": rows,
        "peak_memory_growth_large_to_small": round(growth, 3),
        "fixed_cost_s_estimate": round(fixed, 2),
        "marginal_rows_per_s_estimate": round(1 / per_row) if per_row > 0 else None,
        "target": "at least 0.8x in-process throughput; peak memory flat in the input size",
        "target_met": all(r["ratio_to_in_process"] >= 0.8 for r in rows.values()) and growth < 1.2,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
