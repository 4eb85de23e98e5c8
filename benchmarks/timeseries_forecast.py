"""7. Time-series forecasts: a local batch job and a local endpoint against ``predictor.predict`` in-process.

Runs in ``.venv-extras`` (the time-series stack): ``bash benchmarks/run.sh --only timeseries``.
One model, a ``TimeSeriesPredictor`` with Naive and SeasonalNaive (seasonal period 52) fitted on
synthetic weekly demand (104 weeks per series, an 8-week horizon), is used on both sides:

* **Batch.** 10,000 series (``--quick``: 1,000). The in-process side starts from the same
  long-format DataFrame the hook is given, builds the ``TimeSeriesDataFrame`` and calls
  ``predictor.predict`` with the predictor loaded and ``persist()``-ed. The job side is
  ``hook.start_batch_predict`` on that DataFrame (staged as whole-series JSON parts), with 1 and 2
  workers. Figures, in series per second: the job's *scoring* rate (series over the time from its
  workers starting to its output being in place: what the job does per series once running) and
  its *end-to-end* rate (submission to completion, including starting a Python process, importing
  AutoGluon and loading the model, a fixed cost of a few seconds that a larger job amortises).
  The target (>= 0.8x in-process) applies to the scoring rate. The job's output equals the
  in-process forecast (asserted, every value).
* **Real time.** One series per request, sequential: ``hook.forecast_real_time`` against the local
  endpoint (JSON envelope in, Parquet out, decoded to a DataFrame), and in-process the same
  history through ``TimeSeriesDataFrame`` and ``predictor.predict``. Target: p50 <= 1.3x
  in-process. The answers are compared too.

Repeats are interleaved (job, then in-process), so drift on a shared machine hits both alike;
each figure is a median with its min-max. The machine's load average is recorded with the figures.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from common import WORK, bench_hook, log, percentile, spread

WEEKS = 104
HORIZON = 8
FIT_SERIES = 200
HYPERPARAMETERS = {"Naive": {}, "SeasonalNaive": {}}


def make_history(series: int, seed: int) -> Any:
    """Weekly demand: a level per item, a yearly season, noise; ``item_id``, ``timestamp``, ``demand``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2023-01-01", periods=WEEKS, freq="W-SUN")
    level = rng.uniform(20, 200, size=(series, 1))
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(WEEKS) / 52)
    values = np.round(level * season + rng.normal(0, 5, size=(series, WEEKS)), 2)
    return pd.DataFrame(
        {
            "item_id": np.repeat([f"item_{i:05d}" for i in range(series)], WEEKS),
            "timestamp": np.tile(stamps, series),
            "demand": values.ravel(),
        }
    )


def trained_forecaster(hook: Any) -> dict[str, Any]:
    """Fit (once; reused while the container code is unchanged) on ``FIT_SERIES`` series."""
    import hashlib
    import json

    from common import REPO

    digest = hashlib.sha256()
    for name in ("serve.py", "kind_timeseries.py", "train.py"):
        digest.update((REPO / "airflow_autogluon_cloud" / "container" / name).read_bytes())
    code_hash = digest.hexdigest()[:16]
    marker = WORK / "bench-forecaster.json"
    if marker.exists():
        cached = json.loads(marker.read_text())
        if Path(cached["model_artifact_uri"]).exists() and cached.get("code_sha256") == code_hash:
            return cached
    data = WORK / "ts-train.csv"
    make_history(FIT_SERIES, seed=7).to_csv(data, index=False)
    log("timeseries: training the forecaster (Naive, SeasonalNaive)")
    sub = hook.start_training(
        job_name=f"ag-af-bench-ts-{int(time.time())}",
        train_data=str(data),
        predictor_type="timeseries",
        predictor_init_args={"target": "demand", "prediction_length": HORIZON, "freq": "W-SUN"},
        predictor_fit_args={"hyperparameters": {"Naive": {}, "SeasonalNaive": {"seasonal_period": 52}}},
        timeseries_columns={"id_column": "item_id", "timestamp_column": "timestamp"},
    )
    hook.wait_for_job("training", sub.job_name, check_interval=2, max_check_interval=5, stream_log=False)
    result = {**hook.training_result(sub.job_name), "code_sha256": code_hash}
    marker.write_text(json.dumps(result))
    return result


def in_process(predictor: Any, history: Any, sequential: bool = False) -> tuple[float, Any]:
    """Seconds for ``TimeSeriesDataFrame`` + ``predict`` on ``history``, and the forecast as a plain frame.

    :param sequential: every series' model in this process (joblib's sequential backend), as the
        local batch job's workers do; the default is AutoGluon's, a process pool over the cores.
    """
    import contextlib

    import pandas as pd
    from autogluon.timeseries import TimeSeriesDataFrame
    from joblib import parallel_config

    t0 = time.perf_counter()
    data = TimeSeriesDataFrame.from_data_frame(history, id_column="item_id", timestamp_column="timestamp")
    with parallel_config(backend="sequential") if sequential else contextlib.nullcontext():
        forecast = predictor.predict(data)
    elapsed = time.perf_counter() - t0
    return elapsed, pd.DataFrame(forecast).reset_index()


def run_job(hook: Any, model_uri: str, history: Any, workers: int) -> dict[str, Any]:
    name = f"ag-af-bench-ts-{int(time.time() * 1000) % 10**9}"
    called = time.time()
    hook.start_batch_predict(job_name=name, model_uri=model_uri, test_data=history, instance_count=workers)
    hook.wait_for_job("transform", name, check_interval=0.2, max_check_interval=0.5, stream_log=False)
    finished = time.time()
    desc = hook.describe_job("transform", name)
    if desc.status.value != "Completed":
        raise RuntimeError(f"forecast job {name} ended {desc.status.value}: {desc.failure_reason}")
    record = hook.backend.store.get("transform", name)
    t = record.data["timings"]
    submitted = record.created_at
    return {
        "name": name,
        "staging_s": submitted - called,
        "end_to_end_s": t["completed"] - submitted,
        "scoring_s": t["completed"] - t["workers_started"],
        "observed_s": finished - called,
        "phases": {
            "runner_start": t["runner_started"] - submitted,
            "autogluon_import": t["imported"] - t["runner_started"],
            "model_load": t["model_loaded"] - t["imported"],
            "scoring": t["completed"] - t["workers_started"],
        },
    }


def same_forecast(job_output: Any, expected: Any) -> None:
    import pandas as pd

    got = job_output.copy()
    got["timestamp"] = pd.to_datetime(got["timestamp"])
    got = got.sort_values(["item_id", "timestamp"]).reset_index(drop=True)
    want = expected.sort_values(["item_id", "timestamp"]).reset_index(drop=True)
    want = want.astype({"item_id": str})
    got = got.astype({"item_id": str})[list(want.columns)]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-9)


def run(quick: bool = False, series: int | None = None, repeats: int | None = None) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    series = series or (1_000 if quick else 10_000)
    repeats = repeats or (1 if quick else 3)
    requests = 30 if quick else 200
    hook = bench_hook()
    model = trained_forecaster(hook)
    predictor_dir = WORK / "ts-predictor"
    shutil.rmtree(predictor_dir, ignore_errors=True)
    predictor = hook.to_local_predictor(model["model_artifact_uri"], predictor_dir)
    predictor.persist()
    history = make_history(series, seed=11)
    load_before = os.getloadavg()

    # Batch: interleaved repeats of job (1 worker), job (2 workers), in-process.
    samples: dict[str, list[float]] = {
        "job_1": [],
        "job_2": [],
        "job_1_e2e": [],
        "job_2_e2e": [],
        "in_process": [],
        "in_process_sequential": [],
    }
    phases: dict[str, Any] = {}
    for repeat in range(repeats):
        for workers in (1, 2):
            job = run_job(hook, model["model_artifact_uri"], history, workers)
            samples[f"job_{workers}"].append(series / job["scoring_s"])
            samples[f"job_{workers}_e2e"].append(series / job["end_to_end_s"])
            phases[f"{workers}_worker"] = {k: round(v, 3) for k, v in job["phases"].items()}
            if repeat == 0 and workers == 1:
                _, expected = in_process(predictor, history)
                same_forecast(hook.read_predict_results(job["name"]), expected)
            hook.cleanup_batch_model(job["name"])
            log("timeseries: job with %d worker(s): %s", workers, job["phases"])
        seconds, _ = in_process(predictor, history)
        samples["in_process"].append(series / seconds)
        log("timeseries: in-process %.2fs (%.0f series/s)", seconds, series / seconds)
        seconds, _ = in_process(predictor, history, sequential=True)
        samples["in_process_sequential"].append(series / seconds)
        log("timeseries: in-process, sequential %.2fs (%.0f series/s)", seconds, series / seconds)
    ratios_1 = [a / b for a, b in zip(samples["job_1"], samples["in_process"], strict=True)]
    ratios_2 = [a / b for a, b in zip(samples["job_2"], samples["in_process"], strict=True)]
    batch = {k: spread(v, 1) for k, v in samples.items()}

    # Real time: one series per request, sequential, alternating endpoint and in-process calls.
    endpoint = f"ag-af-bench-ts-{int(time.time()) % 10**6}"
    hook.finish_deploy(hook.start_deploy(endpoint_name=endpoint, model_uri=model["model_artifact_uri"]))
    try:
        one = history[history["item_id"] == history["item_id"].iloc[0]].reset_index(drop=True)
        answer = hook.forecast_real_time(endpoint, one)
        _, expected = in_process(predictor, one)
        same_forecast(answer, expected)
        for _ in range(5):  # warm both sides
            hook.forecast_real_time(endpoint, one)
            in_process(predictor, one)
        ours, local = [], []
        for _ in range(requests):
            t0 = time.perf_counter()
            hook.forecast_real_time(endpoint, one)
            ours.append((time.perf_counter() - t0) * 1000)
            local.append(in_process(predictor, one)[0] * 1000)
    finally:
        hook.delete_endpoint(endpoint)
    p50_ours, p50_local = percentile(ours, 50), percentile(local, 50)
    realtime = {
        "endpoint_p50_ms": round(p50_ours, 1),
        "endpoint_p95_ms": round(percentile(ours, 95), 1),
        "in_process_p50_ms": round(p50_local, 1),
        "in_process_p95_ms": round(percentile(local, 95), 1),
        "p50_ratio": round(p50_ours / p50_local, 2),
        "requests": requests,
    }
    batch_ratio = spread(ratios_1, 2)[0]
    return {
        "series": series,
        "weeks": WEEKS,
        "horizon": HORIZON,
        "models": sorted(HYPERPARAMETERS),
        "repeats": repeats,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "batch_series_per_s": batch,
        "batch_ratio_1_worker": spread(ratios_1, 2),
        "batch_ratio_2_workers": spread(ratios_2, 2),
        # Reference (no target): the job's workers against in-process predict with the same
        # sequential setting they use.
        "batch_ratio_1_worker_to_sequential": spread(
            [a / b for a, b in zip(samples["job_1"], samples["in_process_sequential"], strict=True)], 2
        ),
        "job_phases_s": phases,
        "realtime": realtime,
        "target": "batch scoring >= 0.8x in-process predict at 10,000 series; real-time p50 <= 1.3x",
        "targets": {
            "batch_scoring_ratio_min": 0.8,
            "realtime_p50_ratio_max": 1.3,
        },
        "target_met": batch_ratio >= 0.8 and realtime["p50_ratio"] <= 1.3,
        "output_identical": True,
    }


def run_in_extras(quick: bool = False) -> dict[str, Any]:
    """This section in ``.venv-extras`` (the time-series stack), whatever interpreter runs the others."""
    import importlib.util
    import json
    import subprocess

    from common import REPO

    if importlib.util.find_spec("autogluon.timeseries") is not None:
        return run(quick)
    python = REPO / ".venv-extras" / "bin" / "python"
    if not python.exists():
        raise RuntimeError("the time-series benchmark needs .venv-extras: run bash scripts/setup-extras-env.sh")
    out = WORK / "timeseries-section.json"
    args = [str(python), __file__, "--out", str(out), *(["--quick"] if quick else [])]
    subprocess.run(args, check=True, cwd=REPO)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


if __name__ == "__main__":
    import argparse
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import quiet_logging

    parser = argparse.ArgumentParser(description="the time-series section alone")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--series", type=int, help="batch size in series (default 10,000; --quick 1,000)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3; --quick 1)")
    ns = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    quiet_logging()
    Path(ns.out).write_text(json.dumps(run(ns.quick, ns.series, ns.repeats), indent=2) + "\n")
