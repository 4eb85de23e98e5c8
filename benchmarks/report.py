"""Render ``results.json`` as the markdown tables the README shows."""

from __future__ import annotations

from typing import Any


def _mark(section: dict[str, Any]) -> str:
    if "error" in section:
        return f"**not measured** ({section['error']})"
    return "met" if section.get("target_met") else "**missed**"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = results["versions"]
    out = [
        f"Measured {_when(results)} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, "
        f"{m['os']}, Python {m['python']}; Airflow {v['apache-airflow']}, Amazon provider "
        f"{v['apache-airflow-providers-amazon']}, AutoGluon {v['autogluon.tabular']}, MLflow {v['mlflow']}, "
        f"moto {v['moto']}. Medians of repeated runs; regenerate with `bash benchmarks/run.sh`.",
        "",
    ]
    s = results["sections"]
    out += _summary(s)
    if "parse" in s:
        out += _parse(s["parse"])
    if "slots" in s:
        out += _slots(s["slots"])
    if "polling" in s:
        out += _polling(s["polling"])
    if "endpoint" in s:
        out += _endpoint(s["endpoint"])
    if "batch" in s:
        out += _batch(s["batch"])
    if "staging" in s:
        out += _staging(s["staging"])
    if "timeseries" in s:
        out += _timeseries(s["timeseries"])
    return "\n".join(out).rstrip() + "\n"


TITLES = {
    "parse": "1. DAG-parse cost",
    "slots": "2. Worker-slot time",
    "polling": "3. Polling cost",
    "endpoint": "4. Real-time endpoint",
    "batch": "5. Batch scoring",
    "staging": "6. Staging",
    "timeseries": "7. Time-series forecasts",
}


def _summary(sections: dict[str, Any]) -> list[str]:
    """One line per section: its target and whether the median of its repeats meets it."""
    lines = ["| section | target | target met | repeats | seconds to run |", "|---|---|---|---:|---:|"]
    for key, title in TITLES.items():
        if key in sections:
            p = sections[key]
            cells = (title, p.get("target", ""), _mark(p), p.get("repeats", ""), p.get("seconds_to_run", ""))
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    total = sum(float(p.get("seconds_to_run", 0)) for p in sections.values())
    return [
        *lines,
        "",
        f"Figures are medians over the repeats, with the min–max in brackets. The sections took "
        f"{total / 60:.1f} min in all.",
        "",
    ]


def _range(value: Any, bounds: Any) -> str:
    """``value (low–high)``, or the value alone when no spread was recorded."""
    if not bounds:
        return str(value)
    return f"{value} ({bounds[0]}–{bounds[1]})"


def _when(results: dict[str, Any]) -> str:
    """When the figures were taken; sections kept from an earlier run (``--only``) widen the span."""
    times = sorted(s["measured_at"] for s in results["sections"].values() if "measured_at" in s)
    if not times or times[0] >= results["generated_at"]:
        return results["generated_at"]
    return f"between {times[0]} and {results['generated_at']}"


def _header(title: str, section: dict[str, Any]) -> list[str]:
    return [f"**{title}** — target: {section.get('target', '')}: {_mark(section)}", ""]


def _parse(p: dict[str, Any]) -> list[str]:
    if "rows" not in p:
        return _header("1. DAG-parse cost", p)
    lines = _header("1. DAG-parse cost", p)
    lines += ["| imports (after `airflow.sdk`) | added ms | heavy modules loaded |", "|---|---:|---|"]
    for label, row in p["rows"].items():
        heavy = ", ".join(row["heavy_modules_loaded"]) or "none"
        lines.append(f"| {label} | {_range(row['added_ms_median'], row.get('added_ms_range'))} | {heavy} |")
    ratio = _range(p["ratio_ours_to_amazon_operators"], p.get("ratio_ours_to_amazon_operators_range"))
    return [*lines, f"\nRatio to the Amazon provider's SageMaker operators: {ratio}.", ""]


def _slots(p: dict[str, Any]) -> list[str]:
    lines = _header("2. Worker-slot time", p)
    if "rows" not in p:
        return lines
    lines += [
        f"| AGFitOperator, training time_limit {p['training_seconds']} s | slot held (s) "
        "| waiting without a slot (s) | run wall (s) |",
        "|---|---:|---:|---:|",
    ]
    for mode, row in p["rows"].items():
        cells = [
            _range(row[f"{figure}_median"], row.get(f"{figure}_range"))
            for figure in ("slot_seconds", "waiting_without_slot_seconds", "wall_seconds")
        ]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    ratio = _range(p["ratio_deferrable_to_blocking"], p.get("ratio_deferrable_to_blocking_range"))
    return [*lines, f"\nDeferrable holds the slot {ratio} times as long as blocking.", ""]


def _polling(p: dict[str, Any]) -> list[str]:
    lines = _header("3. Polling cost", p)
    if "rows" not in p:
        return lines
    lines += ["| waiter | status calls per hour | notes |", "|---|---:|---|"]
    for label, row in p["rows"].items():
        notes = []
        if "check_interval" in row:
            notes.append(f"check_interval {row['check_interval']} s")
        if "poke_interval" in row:
            notes.append(f"poke_interval {row['poke_interval']} s, backoff {row['exponential_backoff']}")
        if "gives_up_after_s" in row:
            notes.append(f"gives up after {row['gives_up_after_s']} s")
        if "calls_in_10_min_after_restart" in row:
            notes.append(
                f"{row['calls_in_10_min_before_restart']} calls in the 10 min before the restart, "
                f"{row['calls_in_10_min_after_restart']} in the 10 min after"
            )
        lines.append(
            f"| {label} | {_range(row['calls_per_hour'], row.get('calls_per_hour_range'))} | {'; '.join(notes)} |"
        )
    return [*lines, ""]


def _endpoint(p: dict[str, Any]) -> list[str]:
    lines = _header("4. Real-time endpoint", p)
    if "rows" not in p:
        return lines
    lines += [
        f"Each system measured in turn in each of {p.get('repeats', '?')} repeats, the order rotated; "
        "1-row and 100-row CSV requests, one client or 8 concurrent ones. The clients run on the same "
        "cores as the servers, so a second server process competes with them for the machine.",
        "",
        "| served by | request | p50 ms | p99 ms | requests/s |",
        "|---|---|---:|---:|---:|",
    ]
    for label, cases in p["rows"].items():
        for case, row in cases.items():
            p50 = _range(row["p50_ms"], row.get("p50_ms_range"))
            rps = _range(row["rps"], row.get("rps_range"))
            lines.append(f"| {label} | {case.replace('_', ' ')} | {p50} | {row['p99_ms']} | {rps} |")
    if "ratios" in p:
        lines += ["", "| ratio, within each repeat | median (min–max) | target | met |", "|---|---:|---|---|"]
        for name, r in p["ratios"].items():
            met = ("met" if r["target_met"] else "**missed**") if "target_met" in r else "(reference)"
            lines.append(
                f"| {name.replace('_', ' ')} | {_range(r['median'], r['range'])} | {r.get('target', '')} | {met} |"
            )
    return [*lines, ""]


def _spread(x: dict[str, Any], fmt: str = "{}") -> str:
    return f"{fmt.format(x['median'])} ({fmt.format(x['min'])}–{fmt.format(x['max'])})"


def _batch(p: dict[str, Any]) -> list[str]:
    lines = _header("5. Batch scoring", p)
    if "rows" not in p or "heavy" not in p:
        return lines
    met = p.get("targets_met", {})
    lines += [
        f"Medians (min–max) of interleaved repeats; {p['workers']} workers. In-process: read the CSV, "
        "`predict_proba`, write the job's JSON lines, with the predictor already in memory.",
        "",
        "| rows (CSV) | repeats | job steady rows/s | in-process rows/s | steady ratio | end-to-end ratio "
        "| job total s | job peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table = [(f"{int(r['rows']):,} ({r['file_mb']} MB)", r) for r in p["rows"].values()]
    table.append((f"heavy model: {int(p['heavy']['rows']):,}", p["heavy"]))
    for label, r in table:
        lines.append(
            f"| {label} | {r['repeats']} | {_spread(r['job_steady_rows_per_s'], '{:,.0f}')} "
            f"| {_spread(r['in_process_rows_per_s'], '{:,.0f}')} | {_spread(r['ratio_steady_to_in_process'])} "
            f"| {_spread(r['ratio_end_to_end_to_in_process'])} | {_spread(r['job_total_s'])} "
            f"| {_spread(r['job_peak_rss_mb'], '{:,.0f}')} |"
        )
    first = next(iter(p["rows"].values()))
    fixed = p.get("fixed_cost", first)
    phases, floor_phases = _phases(fixed["job_phases_s"]), _phases(fixed["floor_phases_s"])
    pairs = f"{fixed['pairs']} interleaved pairs on {int(fixed['rows']):,} rows, " if "pairs" in fixed else ""
    first_batch = f", first mini-batch {int(fixed['first_mini_batch_rows']):,} rows" if "pairs" in fixed else ""
    lines += [
        "",
        f"Steady state at the largest size: {p['ratio_steady_to_in_process_largest']} times in-process "
        f"({'met' if met.get('steady_state') else '**missed**'}).",
        f"Fixed cost ({pairs}submission to first mini-batch scored{first_batch}): "
        f"{_spread(fixed['job_fixed_s'])} s ({phases}); "
        f"floor, a fresh `python -c` importing AutoGluon and loading the model: {_spread(fixed['floor_s'])} s "
        f"({floor_phases}); job minus floor, paired: {_spread(fixed['fixed_minus_floor_s'])} s "
        f"({'met' if met.get('fixed_cost') else '**missed**'}: at most 0.3 s). The hook's staging before "
        f"submission (hashing the input): {_spread(fixed['hook_staging_s'])} s.",
        f"Peak memory, largest input over smallest: {p['peak_memory_growth_large_to_small']} "
        f"({'met' if met.get('memory') else '**missed**'}: at most 1.1).",
        f"Heavy model ({p['heavy'].get('model', '')}): fixed cost {_spread(p['heavy']['job_fixed_s'])} s, "
        f"its floor {_spread(p['heavy']['floor_s'])} s, job minus floor, paired: "
        f"{_spread(p['heavy']['fixed_minus_floor_s'])} s (phases: {_phases(p['heavy']['job_phases_s'])}).",
    ]
    if "output_identical_to_in_process" in first:
        same = first["output_identical_to_in_process"]
        lines.append(f"Job output byte-identical to the in-process pipeline's: {same}.")
    return [*lines, ""]


def _phases(phases: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v} s" for k, v in phases.items())


def _staging(p: dict[str, Any]) -> list[str]:
    lines = _header("6. Staging", p)
    if "file_mb" not in p:
        return lines
    rounds = p.get("warm_up_rounds", 1)
    warm_up = "a warm-up round" if rounds == 1 else f"{rounds} warm-up rounds"
    server = "moto's S3 server on loopback"
    if p.get("server_environment"):
        server += ", objects and freed memory kept in memory"
    lines += [
        f"| {p['file_mb']} MB to {server} | MB/s | second staging |",
        "|---|---:|---|",
        f"| `AutoGluonCloudHook.stage_file` | {_range(p['hook_mb_per_s'], p.get('hook_mb_per_s_range'))} "
        f"| {p['second_staging_uploaded_bytes']} bytes uploaded in {p['second_staging_seconds']} s |",
        f"| `aws s3 cp` | {_range(p['aws_s3_cp_mb_per_s'], p.get('aws_s3_cp_mb_per_s_range'))} | |",
        f"\nRatio hook / `aws s3 cp`, within each of {p['repeats']} rounds (after {warm_up}, not counted; "
        "the hook's time includes hashing the file, the CLI's its start-up): "
        f"{_range(p['ratio_hook_to_aws_cli'], p.get('ratio_hook_to_aws_cli_range'))}.",
        "",
    ]
    return lines


def _timeseries(p: dict[str, Any]) -> list[str]:
    lines = _header("7. Time-series forecasts", p)
    if "batch_series_per_s" not in p:
        return [*lines, f"Not measured: {p.get('error', 'no figures')}", ""]
    b = p["batch_series_per_s"]
    rt = p["realtime"]
    lines += [
        f"{p['series']:,} series x {p['weeks']} weeks, {', '.join(p['models'])}, {p['horizon']}-step horizon; "
        f"load average {p['load_average_before'][0]} before, {p['load_average_after'][0]} after; output identical "
        f"to in-process predict: {p['output_identical']}." + (f" Note: {p['note']}." if p.get("note") else ""),
        "",
        "| batch (series/s) | scoring | end to end |",
        "|---|---:|---:|",
        f"| in-process predict | {_triple(b['in_process'])} | |",
        f"| in-process predict, sequential (reference) | {_triple(b.get('in_process_sequential', ['-']))} | |",
        f"| local job, 1 worker | {_triple(b['job_1'])} | {_triple(b['job_1_e2e'])} |",
        f"| local job, 2 workers | {_triple(b['job_2'])} | {_triple(b['job_2_e2e'])} |",
        "",
        f"Scoring rate to in-process: {_triple(p['batch_ratio_1_worker'])} (1 worker), "
        f"{_triple(p['batch_ratio_2_workers'])} (2 workers); 1 worker to the sequential in-process reference: "
        f"{_triple(p.get('batch_ratio_1_worker_to_sequential', ['-']))}. Real time, one series, "
        f"{rt['requests']} sequential requests: endpoint p50 {rt['endpoint_p50_ms']} ms "
        f"(p95 {rt['endpoint_p95_ms']}), in-process p50 "
        f"{rt['in_process_p50_ms']} ms (p95 {rt['in_process_p95_ms']}): ratio {rt['p50_ratio']}.",
        "",
    ]
    return lines


def _triple(x: Any) -> str:
    """``median (min–max)`` of a ``[median, min, max]`` triple."""
    return _range(x[0], x[1:])
