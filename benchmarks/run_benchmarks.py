"""Run the benchmarks and write ``benchmarks/results.json`` and ``benchmarks/results.md``.

Usage (through ``bash benchmarks/run.sh``, which sets up the environments)::

    python benchmarks/run_benchmarks.py [--quick] [--only parse,polling,slots,endpoint,batch,staging,timeseries]

``--quick`` uses small sizes to check that everything runs; the published figures come from a
full run. The README's benchmark section is replaced with the new table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, REPO, WORK, log, machine, quiet_logging, versions

SECTIONS = ("parse", "polling", "slots", "endpoint", "batch", "staging", "timeseries")
README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"


def run_section(name: str, quick: bool) -> dict[str, Any]:
    import importlib

    module = {
        "parse": "parse_cost",
        "polling": "polling_cost",
        "slots": "worker_slots",
        "endpoint": "endpoint_latency",
        "batch": "batch_scoring",
        "staging": "staging",
        "timeseries": "timeseries_forecast",  # runs in .venv-extras (the time-series stack)
    }[name]
    started = time.monotonic()
    try:
        section = importlib.import_module(module)
        result = getattr(section, "run_in_extras", section.run)(quick=quick)
    except Exception as err:
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}", "target_met": False}
    result["seconds_to_run"] = round(time.monotonic() - started, 1)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes; checks that everything runs")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    quiet_logging()
    results_path = BENCH_DIR / "results.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() and not args.quick else {}
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "versions": versions(),
        "sections": dict(previous.get("sections", {})),
    }
    for name in only:
        log("=== %s ===", name)
        results["sections"][name] = run_section(name, args.quick)
        log("%s: target met = %s", name, results["sections"][name].get("target_met"))
    out_json = WORK / "results-quick.json" if args.quick else results_path
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    from report import render

    table = render(results)
    out_md = WORK / "results-quick.md" if args.quick else BENCH_DIR / "results.md"
    out_md.write_text(table)
    if not args.quick:
        update_readme(table)
    print(table)
    log("wrote %s and %s", out_json, out_md)
    return 0 if all(s.get("target_met") for s in results["sections"].values()) else 1


def update_readme(table: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    if README_START not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    tmp = readme.with_suffix(".md.partial")
    tmp.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}")
    os.replace(tmp, readme)


if __name__ == "__main__":
    raise SystemExit(main())
