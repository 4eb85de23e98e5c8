"""A batch's profile against the model's baseline: Model Monitor's checks, and drift per column.

Shipped beside the entry scripts (see ``ag_kinds.CODE_MODULES``); standard library only, SciPy
for the chi-squared distribution. Imports nothing from the provider package.

Checks (Model Monitor's names, in ``constraint_violations.json``):

- ``missing_column_check`` / ``extra_column_check``: a baseline column absent from the batch, or
  a batch column the baseline does not have.
- ``data_type_check``: a column typed as numbers in one and as text in the other (integers and
  fractions are the same family: a gap turns integers into floats).
- ``completeness_check``: the share of present values fell by more than ``completeness_drop``
  (absolute) below the baseline's (its ``constraints.json`` ``completeness``).
- ``categorical_values_check``: more than ``new_category_share`` of a text column's values are
  outside the baseline's domain (only for columns whose whole domain was seen).
- ``baseline_drift_check``: the column's distribution moved, on the baseline's bins. Following
  Evidently's defaults (``evidently`` DataDriftPreset, "stattest" defaults): under
  ``small_sample_rows`` (1000) rows a statistical test at ``p_value`` (0.05) — two-sample
  Kolmogorov-Smirnov for numbers (on the decile bins: conservative), chi-squared for categories —
  with a Holm correction across the batch's columns, so that one report's false-alarm rate stays
  at 5%; at 1000 rows and more a distance: Jensen-Shannon distance (natural log, as
  ``scipy.spatial.distance.jensenshannon``) >= ``js_threshold`` (0.1), or the Population
  Stability Index >= ``psi_threshold`` (0.25, the usual "significant shift" band; 0.1-0.25 is
  "moderate"). The model's answers (predicted class, each class's probability, a regression
  output) are compared the same way: prediction drift, named ``prediction:<column>``.

Every threshold can be set for the whole batch or per column, and any check can be switched off
for the batch or per column (see :data:`DEFAULTS`).
"""

from __future__ import annotations

import math
from typing import Any

NUMERIC = ("Integral", "Fractional")
DEFAULTS: dict[str, Any] = {
    "small_sample_rows": 1000,
    "p_value": 0.05,
    "js_threshold": 0.1,
    "psi_threshold": 0.25,
    "completeness_drop": 0.1,
    "new_category_share": 0.01,
    #: check names switched off for every column, e.g. ["extra_column_check"]
    "skip_checks": [],
    #: column name -> {"skip_checks": [...], "js_threshold": 0.2, ...} (``prediction:<column>`` too)
    "features": {},
}
CHECKS = (
    "missing_column_check",
    "extra_column_check",
    "data_type_check",
    "completeness_check",
    "categorical_values_check",
    "baseline_drift_check",
)
_EPSILON = 1e-4  # an empty bin's share, so that PSI stays finite


def options(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """:data:`DEFAULTS` updated by ``overrides``; a key it does not know is an error."""
    merged = {**DEFAULTS, **(overrides or {})}
    unknown = sorted(set(merged) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown data check option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    bad = sorted(set(merged["skip_checks"]) - set(CHECKS))
    for column in (merged.get("features") or {}).values():
        bad += sorted(set(column.get("skip_checks", [])) - set(CHECKS))
    if bad:
        raise ValueError(f"unknown check name(s) {', '.join(bad)}; known: {', '.join(CHECKS)}")
    return merged


def _for(opts: dict[str, Any], name: str) -> dict[str, Any]:
    own = (opts.get("features") or {}).get(name) or {}
    return {**opts, **own, "skip_checks": [*opts["skip_checks"], *own.get("skip_checks", [])]}


# --------------------------------------------------------------------------- statistics


def _shares(counts: list[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(expected: list[float], actual: list[float]) -> float:
    """Population Stability Index of two binned distributions (shares; empty bins count as 1e-4)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=False):
        e, a = max(e, _EPSILON), max(a, _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def js_distance(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon distance (natural log): the square root of the divergence, in [0, sqrt(ln 2)]."""
    divergence = 0.0
    for a, b in zip(p, q, strict=False):
        m = (a + b) / 2
        if a > 0:
            divergence += a * math.log(a / m) / 2
        if b > 0:
            divergence += b * math.log(b / m) / 2
    return math.sqrt(max(divergence, 0.0))


def ks_binned(a: list[int], b: list[int]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov on the same bins: (D, asymptotic p-value, Stephens' correction).

    D is taken at the bin edges only, so it is at most the exact D: the test is conservative.
    """
    n, m = float(sum(a)), float(sum(b))
    if not n or not m:
        return 0.0, 1.0
    d = cum_a = cum_b = 0.0
    for x, y in zip(a, b, strict=False):
        cum_a += x / n
        cum_b += y / m
        d = max(d, abs(cum_a - cum_b))
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 0.2:
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def chi2_two_sample(a: list[float], b: list[float]) -> tuple[float, float]:
    """Chi-squared test of homogeneity on a 2 x k table of counts: (statistic, p-value)."""
    from scipy.special import gammaincc

    cells = [(x, y) for x, y in zip(a, b, strict=False) if x + y > 0]
    n, m = sum(x for x, _ in cells), sum(y for _, y in cells)
    if len(cells) < 2 or not n or not m:
        return 0.0, 1.0
    total = n + m
    stat = 0.0
    for x, y in cells:
        column = x + y
        for observed, row in ((x, n), (y, m)):
            expected = row * column / total
            stat += (observed - expected) ** 2 / expected
    return stat, float(gammaincc((len(cells) - 1) / 2, stat / 2))


def _category_bins(base: dict[str, Any], batch: dict[str, Any], rows: int) -> tuple[list[float], list[float]]:
    """Counts per baseline category; rare ones (under 5 expected rows in the batch) and the
    baseline's ``other`` and the batch's new values pooled in one last bin."""
    base_total = sum(base["values"].values()) + base.get("other", 0)
    if not base_total:
        return [], []
    keep = [v for v, c in base["values"].items() if c * rows / base_total >= 5]
    pooled_base = base_total - sum(base["values"][v] for v in keep)
    batch_values = batch.get("values", {})
    batch_total = sum(batch_values.values()) + batch.get("other", 0)
    pooled_batch = batch_total - sum(batch_values.get(v, 0) for v in keep)
    return [*(base["values"][v] for v in keep), pooled_base], [*(batch_values.get(v, 0) for v in keep), pooled_batch]


def drift(base: dict[str, Any], batch: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any] | None:
    """One column's drift statistics; ``None`` when the two cannot be compared (types differ)."""
    present = batch["count"] - batch["missing"]
    # Requests bin at most data_profile.PROFILED_ROWS_PER_REQUEST rows each (counts scaled up to
    # every row): the tests' sample size is the rows actually binned.
    profiled = int(batch.get("profiled", present))
    if present == 0 or profiled == 0 or (base["count"] - base["missing"]) == 0:
        return None
    if "hist" in base and "hist" in batch and base["edges"] == batch["edges"]:
        a, b = base["hist"], batch["hist"]
        small_test = "ks"
    elif "values" in base and "values" in batch:
        a, b = _category_bins(base, batch, profiled)
        small_test = "chi2"
    else:
        return None
    p, q = _shares(a), _shares(b)
    b = [x * profiled / sum(b) for x in b] if sum(b) else b  # counts of the binned rows
    result: dict[str, Any] = {
        "rows": profiled,
        "present_rows": present,
        "baseline_rows": base["count"] - base["missing"],
        "psi": round(psi(p, q), 6),
        "js_distance": round(js_distance(p, q), 6),
    }
    if profiled < opts["small_sample_rows"]:
        statistic, p_value = ks_binned(a, b) if small_test == "ks" else chi2_two_sample(a, b)
        result.update(method=small_test, statistic=round(statistic, 6), p_value=p_value, threshold=opts["p_value"])
    else:
        result.update(
            method="js_distance" if result["psi"] < opts["psi_threshold"] else "psi",
            threshold=opts["js_threshold"] if result["psi"] < opts["psi_threshold"] else opts["psi_threshold"],
            drifted=result["js_distance"] >= opts["js_threshold"] or result["psi"] >= opts["psi_threshold"],
        )
    return result


def _holm(results: list[dict[str, Any]]) -> None:
    """Decide the tests together (Holm's step-down): the family-wise false-alarm rate stays at ``p_value``."""
    tested = sorted((r for r in results if "p_value" in r), key=lambda r: r["p_value"])
    rejecting = True
    for rank, result in enumerate(tested):
        level = result["threshold"] / (len(tested) - rank)
        rejecting = rejecting and result["p_value"] < level
        result["adjusted_threshold"] = level
        result["drifted"] = rejecting


# --------------------------------------------------------------------------- the report


def compare(
    baseline: dict[str, Any],
    baseline_constraints: dict[str, Any] | None,
    batch: dict[str, Any],
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(constraint_violations, drift_report)`` of a batch sketch against the baseline sketch.

    Both sketches come from ``data_profile`` (the baseline's from its ``statistics.json``).
    """
    opts = options(overrides)
    completeness = {f["name"]: f.get("completeness") for f in (baseline_constraints or {}).get("features", [])}
    violations: list[dict[str, str]] = []

    def violate(name: str, check: str, description: str) -> None:
        if check not in _for(opts, name)["skip_checks"]:
            violations.append({"feature_name": name, "constraint_check_type": check, "description": description})

    base_features, batch_features = baseline["features"], batch["features"]
    for name in base_features:
        if name not in batch_features:
            violate(name, "missing_column_check", f"column {name!r} is in the baseline but not in the batch")
    for name in batch_features:
        if name not in base_features:
            violate(name, "extra_column_check", f"column {name!r} is in the batch but not in the baseline")

    columns: dict[str, dict[str, Any]] = {}
    for section, prefix in (("features", ""), ("predictions", "prediction:")):
        for column, base in baseline.get(section, {}).items():
            current = batch.get(section, {}).get(column)
            if current is None:
                continue
            name = prefix + column
            own = _for(opts, name)
            if section == "features":
                _schema_checks(name, base, current, completeness.get(column), own, violate)
            if "baseline_drift_check" in own["skip_checks"]:
                continue
            result = drift(base, current, own)
            if result is not None:
                columns[name] = result
    _holm(list(columns.values()))
    drifted = [name for name, result in columns.items() if result.get("drifted")]
    for name in drifted:
        r = columns[name]
        measure = (
            f"{r['method']} p-value {r['p_value']:.3g} < {r['adjusted_threshold']:.3g} "
            f"(Holm-corrected {r['threshold']})"
            if "p_value" in r
            else f"Jensen-Shannon distance {r['js_distance']:.3f}, PSI {r['psi']:.3f} "
            f"(thresholds {_for(opts, name)['js_threshold']}, {_for(opts, name)['psi_threshold']})"
        )
        violate(name, "baseline_drift_check", f"the distribution of {name!r} drifted from the baseline: {measure}")
    report = {
        "version": 1,
        "item_count": batch["item_count"],
        "baseline_item_count": baseline.get("item_count"),
        "options": {k: v for k, v in opts.items() if k != "features"},
        "columns": columns,
        "drifted_columns": drifted,
        "violations": summary({"violations": violations}),
    }
    return {"violations": violations}, report


def _schema_checks(
    name: str,
    base: dict[str, Any],
    batch: dict[str, Any],
    completeness: float | None,
    own: dict[str, Any],
    violate: Any,
) -> None:
    present = batch["count"] - batch["missing"]
    if present and (base["type"] in NUMERIC) != (batch["type"] in NUMERIC):
        violate(
            name,
            "data_type_check",
            f"column {name!r} was {base['type']} in the baseline and is {batch['type']} in the batch",
        )
    expected = completeness
    if expected is None:
        expected = (base["count"] - base["missing"]) / base["count"] if base["count"] else 1.0
    observed = present / batch["count"] if batch["count"] else 1.0
    if expected - observed > own["completeness_drop"]:
        violate(
            name,
            "completeness_check",
            f"column {name!r} is {observed:.1%} complete; the baseline is {expected:.1%} complete",
        )
    if "values" in base and "values" in batch and base.get("other", 0) == 0 and present:
        new = {v: c for v, c in batch["values"].items() if v not in base["values"]}
        share = (sum(new.values()) + batch.get("other", 0)) / present
        if share > own["new_category_share"]:
            shown = ", ".join(repr(v) for v in sorted(new, key=lambda v: -new[v])[:5])
            violate(
                name,
                "categorical_values_check",
                f"{share:.1%} of column {name!r} is outside the baseline's values (new: {shown})",
            )


def summary(violations: dict[str, Any]) -> dict[str, Any]:
    """A small summary of ``constraint_violations.json``: the count, and the columns per check."""
    checks: dict[str, list[str]] = {}
    for v in violations.get("violations", []):
        checks.setdefault(v["constraint_check_type"], []).append(v["feature_name"])
    return {"count": len(violations.get("violations", [])), "checks": checks}
