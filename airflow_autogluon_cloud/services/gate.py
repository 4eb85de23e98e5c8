"""The promotion gate's rule: is the challenger better than the champion beyond the noise?

The evaluation job scored both models on the same holdout rows and computed, for every metric, the
paired difference challenger - champion with bootstrap intervals (``container/paired_stats.py``).
This module turns that report and the gate's options into a decision a person can audit: every
rule that was checked, with both scores, the improvement, its interval, the p-value where there is
one and the rows used, and a one-line reason. It writes nothing; the registry service does.

Improvements are in the metric's own units, signed so that positive is better (for ``log_loss``,
champion - challenger). Rules, at ``confidence`` (a two-sided interval level):

* **metric**: the lower bound of the improvement's interval must exceed
  ``max(min_improvement, min_relative_improvement * |champion score|)``;
* **guardrails** ``{metric: tolerance}``: the upper bound of how much *worse* the challenger is may
  not exceed the tolerance (the challenger must be shown not to be worse by more than it); a
  guardrail metric the evaluation did not report fails;
* **min_rows**: a holdout with fewer rows is rejected: too small to tell;
* **slices** ``{column: tolerance}``: no slice value with at least ``min_slice_rows`` rows may be
  *significantly* worse on the metric by more than its tolerance (the lower bound of its worsening
  above the tolerance). Slices are smaller than the holdout, so their intervals are wide; the
  guardrail's stricter reading would reject nearly every challenger.

``confidence=None`` compares point estimates (the rule before intervals existed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError

#: The interval levels the evaluation job reports (``paired_stats.LEVELS``).
CONFIDENCE_LEVELS = (0.8, 0.9, 0.95, 0.99)
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_SLICE_ROWS = 30


def _number(parameter: str, value: Any, fix: str, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(parameter, value, fix) from None
    if isinstance(value, bool) or not math.isfinite(number) or number < minimum:
        raise InvalidParameterError(parameter, value, fix)
    return number


def _count(parameter: str, value: Any, minimum: int) -> int:
    number = _number(parameter, value, f"give a whole number >= {minimum}.", minimum)
    if number != int(number):
        raise InvalidParameterError(parameter, value, f"give a whole number >= {minimum}.")
    return int(number)


@dataclass(frozen=True)
class GateOptions:
    """The gate's options, validated (see the module docstring for the rules)."""

    confidence: float | None = DEFAULT_CONFIDENCE
    min_improvement: float = 0.0
    min_relative_improvement: float = 0.0
    guardrails: dict[str, float] = field(default_factory=dict)
    min_rows: int = 0
    slices: dict[str, float] = field(default_factory=dict)
    min_slice_rows: int = DEFAULT_MIN_SLICE_ROWS

    @classmethod
    def parse(
        cls,
        *,
        confidence: Any = DEFAULT_CONFIDENCE,
        min_improvement: Any = 0.0,
        min_relative_improvement: Any = 0.0,
        guardrails: Any = None,
        min_rows: Any = 0,
        slices: Any = None,
        min_slice_rows: Any = DEFAULT_MIN_SLICE_ROWS,
    ) -> GateOptions:
        """Validate every option (templated values arrive as strings too) before anything is written."""
        level: float | None = None
        if confidence not in (None, "", "None", "none"):
            level = _number("confidence", confidence, f"use one of {CONFIDENCE_LEVELS}, or None for point estimates.")
            if not any(math.isclose(level, c) for c in CONFIDENCE_LEVELS):
                raise InvalidParameterError(
                    "confidence", confidence, f"use one of {CONFIDENCE_LEVELS} (the levels the evaluation reports)."
                )
        if guardrails is None:
            guardrails = {}
        if not isinstance(guardrails, dict):
            raise InvalidParameterError(
                "guardrails", guardrails, 'give {"metric": tolerance}, e.g. {"log_loss": 0.01}.'
            )
        if slices is None:
            slices = {}
        if isinstance(slices, str):
            slices = [slices]
        if isinstance(slices, (list, tuple)):
            slices = dict.fromkeys(slices, 0.0)
        if not isinstance(slices, dict) or not all(isinstance(c, str) and c for c in slices):
            raise InvalidParameterError("slices", slices, 'give column names, or {"column": tolerance}.')
        return cls(
            confidence=level,
            min_improvement=_number("min_improvement", min_improvement, "give a number >= 0 (metric units)."),
            min_relative_improvement=_number(
                "min_relative_improvement", min_relative_improvement, "give a fraction >= 0, e.g. 0.01 for 1%."
            ),
            guardrails={
                str(name): _number(f"guardrails[{name!r}]", tol, "give a tolerance >= 0 in the metric's units.")
                for name, tol in guardrails.items()
            },
            min_rows=_count("min_rows", min_rows, 0),
            slices={
                column: _number(f"slices[{column!r}]", tol, "give a tolerance >= 0 in the metric's units.")
                for column, tol in slices.items()
            },
            min_slice_rows=_count("min_slice_rows", min_slice_rows, 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def comparison_of(evaluation: dict[str, Any], challenger: str, champion: str) -> dict[str, Any] | None:
    """The paired comparison challenger vs champion in the evaluation, turned round if it was made
    the other way (champion vs challenger); ``None`` if the evaluation has none."""
    found = (evaluation.get("comparisons") or {}).get(challenger)
    if found and found.get("baseline") == champion:
        return found
    reverse = (evaluation.get("comparisons") or {}).get(champion)
    if not reverse or reverse.get("baseline") != challenger:
        return None
    return {**reverse, "baseline": champion, "metrics": _reversed(reverse.get("metrics") or {})}


def _reversed(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, entry in metrics.items():
        flipped = dict(entry)
        flipped["model"], flipped["baseline"] = entry.get("baseline"), entry.get("model")
        if entry.get("difference") is not None:
            flipped["difference"] = -entry["difference"]
        if entry.get("intervals"):
            flipped["intervals"] = {level: [-hi, -lo] for level, (lo, hi) in entry["intervals"].items()}
        if entry.get("discordant"):
            flipped["discordant"] = list(reversed(entry["discordant"]))
        out[name] = flipped
    return out


def _improvement(entry: dict[str, Any], higher_is_better: bool, confidence: float | None) -> dict[str, Any]:
    """Improvement (positive = better) of one metric entry, with its interval at ``confidence``."""
    sign = 1.0 if higher_is_better else -1.0
    difference = entry.get("difference")
    interval = None
    if confidence is not None and entry.get("intervals"):
        low, high = entry["intervals"].get(f"{confidence:g}") or (None, None)
        if low is not None and high is not None:
            interval = sorted([sign * low, sign * high])
    return {
        "challenger": entry.get("model"),
        "champion": entry.get("baseline"),
        "improvement": None if difference is None else sign * difference,
        "interval": interval,
        "p_value": entry.get("p_value"),
        "test": entry.get("test"),
        "num_rows": entry.get("num_rows"),
        "higher_is_better": higher_is_better,
    }


def _fmt_interval(interval: list[float] | None) -> str:
    return "[n/a]" if interval is None else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


@dataclass
class GateDecision:
    """What the gate found: ``passed``, the one-line ``reason`` and every rule checked."""

    passed: bool
    reason: str
    rules: list[dict[str, Any]]
    metric: dict[str, Any]
    guardrails: dict[str, Any]
    slices: list[dict[str, Any]]


def decide(
    *,
    evaluation: dict[str, Any],
    challenger: str,
    champion: str,
    metric: str,
    higher_is_better: bool,
    options: GateOptions,
) -> GateDecision:
    """Judge the challenger against the champion (both scored in ``evaluation``) under ``options``.

    Raises :class:`InvalidParameterError` for a request the evaluation cannot answer (no intervals
    at ``confidence``, slices the evaluation did not compute), before anything is written.
    """
    scores = evaluation.get("metrics") or {}
    directions = evaluation.get("metric_directions") or {}
    num_rows = evaluation.get("num_rows")
    confidence = options.confidence
    comparison = comparison_of(evaluation, challenger, champion) or {}
    compared = comparison.get("metrics") or {}
    if confidence is not None and not (compared.get(metric) or {}).get("intervals"):
        raise InvalidParameterError(
            "confidence",
            confidence,
            f"the evaluation has no paired interval for {metric!r} between {challenger!r} and {champion!r} "
            "(evaluate both models in one job, with a metric the job bootstraps), or pass confidence=None.",
        )
    missing_slices = sorted(set(options.slices) - set(comparison.get("slices") or {}))
    if missing_slices:
        raise InvalidParameterError(
            "slices", missing_slices, "evaluate with slices=[...] naming these columns, so the job reports them."
        )
    entry = compared.get(metric) or {
        "model": scores[challenger][metric],
        "baseline": scores[champion][metric],
        "difference": scores[challenger][metric] - scores[champion][metric],
        "num_rows": num_rows,
    }
    main = _improvement(entry, higher_is_better, confidence)
    threshold = max(options.min_improvement, options.min_relative_improvement * abs(main["champion"] or 0.0))
    judged = main["interval"][0] if confidence is not None else main["improvement"]
    main.update(metric=metric, rule="improvement", threshold=threshold, passed=bool(judged > threshold))
    rules: list[dict[str, Any]] = []
    failures: list[str] = []
    if num_rows is not None and num_rows < options.min_rows:
        rules.append({"rule": "min_rows", "num_rows": num_rows, "min_rows": options.min_rows, "passed": False})
        failures.append(f"a holdout of {num_rows} rows is below min_rows={options.min_rows}: too small to tell")
    elif options.min_rows:
        rules.append({"rule": "min_rows", "num_rows": num_rows, "min_rows": options.min_rows, "passed": True})
    rules.append(main)
    guardrails: dict[str, Any] = {}
    for name, tolerance in sorted(options.guardrails.items()):
        found = compared.get(name)
        if found is None and name in scores.get(challenger, {}) and name in scores.get(champion, {}):
            a, b = scores[challenger][name], scores[champion][name]
            found = None if a is None or b is None else {"model": a, "baseline": b, "difference": a - b}
        result: dict[str, Any] = {"rule": "guardrail", "metric": name, "tolerance": tolerance}
        if found is None or found.get("difference") is None or (confidence is not None and not found.get("intervals")):
            result.update(passed=False, missing=True)
            failures.append(f"guardrail {name} is missing from the evaluation")
        else:
            result.update(_improvement(found, bool(directions.get(name, True)), confidence))
            worst = -(result["interval"][0] if confidence is not None else result["improvement"])
            result.update(worse_by_up_to=worst, passed=bool(worst <= tolerance))
            if not result["passed"]:
                failures.append(f"guardrail {name} worse by up to {worst:+.4f} (tolerance {tolerance:g})")
        guardrails[name] = result
        rules.append(result)
    slice_results = _slices(comparison, metric, higher_is_better, options, failures)
    rules.extend(slice_results)
    passed = main["passed"] and not failures
    reason = _reason(main, confidence, num_rows, passed, failures)
    return GateDecision(passed, reason, rules, main, guardrails, slice_results)


def _slices(
    comparison: dict[str, Any], metric: str, higher_is_better: bool, options: GateOptions, failures: list[str]
) -> list[dict[str, Any]]:
    out = []
    for column, tolerance in sorted(options.slices.items()):
        for value, found in sorted((comparison.get("slices") or {}).get(column, {}).items()):
            entry = (found.get("metrics") or {}).get(metric)
            rows = int(found.get("num_rows") or 0)
            result: dict[str, Any] = {"rule": "slice", "column": column, "value": value, "tolerance": tolerance}
            if entry is None or rows < options.min_slice_rows:
                result.update(num_rows=rows, passed=True, skipped=f"fewer than {options.min_slice_rows} rows")
                out.append(result)
                continue
            result.update(_improvement(entry, higher_is_better, options.confidence))
            if options.confidence is not None and result["interval"] is None:
                result.update(passed=True, skipped="no interval")
                out.append(result)
                continue
            # significantly worse: even the most favourable end of the interval is worse by more than the tolerance
            least_worse = -(result["interval"][1] if options.confidence is not None else result["improvement"])
            result.update(worse_by_at_least=least_worse, passed=bool(least_worse <= tolerance))
            if not result["passed"]:
                interval = f" {_fmt_interval(result['interval'])}" if result["interval"] else ""
                failures.append(
                    f"slice {column}={value} is worse: {metric} {result['improvement']:+.4f}{interval} "
                    f"on {rows} rows (tolerance {tolerance:g})"
                )
            out.append(result)
    return out


def _reason(
    main: dict[str, Any],
    confidence: float | None,
    num_rows: Any,
    passed: bool,
    failures: list[str],
) -> str:
    name, improvement = main["metric"], main["improvement"]
    if confidence is None:
        verb = "beats" if main["passed"] else "does not beat"
        head = (
            f"{name} {main['challenger']:.4f} vs champion {main['champion']:.4f} on the same {num_rows} rows: "
            f"{verb} it by more than {main['threshold']:g}"
        )
    else:
        head = (
            f"{name} {improvement:+.4f} {_fmt_interval(main['interval'])} at {confidence * 100:g}% on {num_rows} rows"
        )
        if main.get("p_value") is not None:
            head += f" ({main['test']} p={main['p_value']:.3g})"
        if main["passed"]:
            head += ": a significant improvement"
        elif improvement <= main["threshold"]:
            head += ": does not beat the champion"
            if main["threshold"] > 0:  # say which bar it missed: the interval alone may exclude zero
                head += f" by more than {main['threshold']:g}"
        else:
            head += ": not a significant improvement"
            if main["threshold"] > 0:
                head += f" beyond {main['threshold']:g}"
    tail = "; ".join(failures)
    if passed:
        return f"{head}; approved"
    return f"{head}{'; ' + tail if tail else ''}; champion kept"


def _rule_line(result: dict[str, Any]) -> str:
    """One rule as a short ``key=value`` line (the registry keeps these; SageMaker 256 characters each)."""
    parts = []
    for key in ("challenger", "champion", "improvement"):
        if isinstance(result.get(key), (int, float)):
            parts.append(f"{key}={result[key]:.6g}")
    if result.get("interval"):
        parts.append(f"interval={_fmt_interval(result['interval'])}")
    for key in ("p_value", "test", "num_rows", "threshold", "tolerance", "skipped", "missing"):
        if result.get(key) is not None:
            value = result[key]
            parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    parts.append("passed" if result.get("passed") else "FAILED")
    return " ".join(parts)


def gate_audit(
    found: GateDecision | None, options: GateOptions, expected: int | None, evaluation: dict[str, Any]
) -> dict[str, Any]:
    """What the registry version records of the decision: ``{"record": {entry: line}}``."""
    record: dict[str, Any] = {
        "options": " ".join(f"{k}={v}" for k, v in options.to_dict().items() if v not in ({}, None))
        + (" confidence=None" if options.confidence is None else ""),
        "evaluation": (
            f"{evaluation.get('job_name')} rows={evaluation.get('num_rows')} data={evaluation.get('data_uri')}"
        ),
        "champion_check": "compared against no champion"
        if expected is None
        else f"compared against version {expected}",
    }
    if found is None:
        record["metric"] = "no champion: first version approved"
        return {"record": record}
    record[f"metric:{found.metric['metric']}"] = _rule_line(found.metric)
    for rule in found.rules:
        if rule["rule"] == "min_rows":
            record["min_rows"] = f"num_rows={rule['num_rows']} min_rows={rule['min_rows']} " + (
                "passed" if rule["passed"] else "FAILED"
            )
    for name, rule in found.guardrails.items():
        record[f"guardrail:{name}"] = _rule_line(rule)
    columns: dict[str, list[str]] = {}
    for rule in found.slices:
        columns.setdefault(rule["column"], []).append(f"{rule['value']}: {_rule_line(rule)}")
    for column, lines in columns.items():
        record[f"slices:{column}"] = "; ".join(sorted(lines, key=lambda line: "FAILED" not in line))
    return {"record": record}
