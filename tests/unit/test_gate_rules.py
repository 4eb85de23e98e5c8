"""The gate's rules (services/gate.py) on evaluation reports written out by hand: what each option
does, the one-line reason, the audit record, and bad options refused by name."""

from __future__ import annotations

import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.services.gate import GateOptions, comparison_of, decide, gate_audit


def entry(model: float, baseline: float, low: float, high: float, **extra) -> dict:
    """A paired-statistics entry: the difference model - baseline and its 95% interval."""
    return {
        "model": model,
        "baseline": baseline,
        "difference": model - baseline,
        "num_rows": 640,
        "intervals": {"0.8": [low / 2, high / 2], "0.95": [low, high]},
        **extra,
    }


def evaluation(metrics: dict, slices: dict | None = None, num_rows: int = 640) -> dict:
    return {
        "status": "Completed",
        "job_name": "ag-af-eval-x",
        "num_rows": num_rows,
        "data_uri": "/data/holdout.csv",
        "metric_directions": {"roc_auc": True, "log_loss": False, "accuracy": True},
        "metrics": {
            "challenger": {name: e["model"] for name, e in metrics.items()},
            "champion": {name: e["baseline"] for name, e in metrics.items()},
        },
        "comparisons": {
            "challenger": {"baseline": "champion", "metrics": metrics, "slices": slices or {}, "num_rows": num_rows}
        },
    }


def judge(report: dict, metric: str = "roc_auc", higher: bool = True, **options):
    return decide(
        evaluation=report,
        challenger="challenger",
        champion="champion",
        metric=metric,
        higher_is_better=higher,
        options=GateOptions.parse(**options),
    )


def test_the_issues_example_is_not_a_significant_improvement():
    report = evaluation({"roc_auc": entry(0.9119, 0.9115, -0.011, 0.012, p_value=0.94, test="DeLong")})
    found = judge(report)
    assert not found.passed
    assert found.reason == (
        "roc_auc +0.0004 [-0.0110, +0.0120] at 95% on 640 rows (DeLong p=0.94): not a significant improvement; "
        "champion kept"
    )
    # the point-estimate rule of before would have approved it
    assert judge(report, confidence=None).passed


def test_a_clear_improvement_passes_and_min_improvement_raises_the_bar():
    report = evaluation({"roc_auc": entry(0.95, 0.90, 0.03, 0.07)})
    assert judge(report).passed
    assert judge(report, min_improvement=0.02).passed
    found = judge(report, min_improvement=0.04)
    assert not found.passed
    assert "not a significant improvement beyond 0.04" in found.reason
    # relative: 5% of the champion's 0.90 is 0.045 > the lower bound 0.03
    assert not judge(report, min_relative_improvement=0.05).passed
    assert judge(report, min_relative_improvement=0.02).passed


def test_a_worse_challenger_does_not_beat_the_champion():
    found = judge(evaluation({"roc_auc": entry(0.80, 0.90, -0.13, -0.07)}))
    assert not found.passed
    assert "does not beat the champion" in found.reason


def test_lower_is_better_metrics_turn_the_interval_round():
    # log_loss 0.30 vs 0.35: difference -0.05 in [-0.07, -0.03] is an improvement of +0.05 [+0.03, +0.07]
    found = judge(evaluation({"log_loss": entry(0.30, 0.35, -0.07, -0.03)}), metric="log_loss", higher=False)
    assert found.passed
    assert found.metric["improvement"] == pytest.approx(0.05)
    assert found.metric["interval"] == pytest.approx([0.03, 0.07])


def test_guardrail_judged_on_the_worse_end_and_missing_metric_fails():
    metrics = {
        "roc_auc": entry(0.95, 0.90, 0.03, 0.07),
        "log_loss": entry(0.40, 0.30, 0.06, 0.14),  # worse by 0.10 [0.06, 0.14]
    }
    found = judge(evaluation(metrics), guardrails={"log_loss": 0.01})
    assert not found.passed
    assert found.guardrails["log_loss"]["worse_by_up_to"] == pytest.approx(0.14)
    assert "guardrail log_loss worse by up to +0.1400 (tolerance 0.01)" in found.reason
    assert judge(evaluation(metrics), guardrails={"log_loss": 0.2}).passed
    # worse only within the noise: the worse end of the interval decides, so 0.005 tolerance is not enough
    noisy = {**metrics, "log_loss": entry(0.30, 0.30, -0.01, 0.01)}
    assert not judge(evaluation(noisy), guardrails={"log_loss": 0.005}).passed
    assert judge(evaluation(noisy), guardrails={"log_loss": 0.02}).passed
    missing = judge(evaluation(metrics), guardrails={"mcc": 0.01})
    assert not missing.passed
    assert "guardrail mcc is missing from the evaluation" in missing.reason


def test_too_small_a_holdout_is_rejected_saying_so():
    found = judge(evaluation({"roc_auc": entry(0.95, 0.90, 0.03, 0.07)}, num_rows=80), min_rows=200)
    assert not found.passed
    assert "a holdout of 80 rows is below min_rows=200: too small to tell" in found.reason


def test_a_significantly_worse_slice_is_named():
    slices = {
        "region": {
            "north": {"num_rows": 120, "metrics": {"roc_auc": entry(0.70, 0.85, -0.22, -0.08)}},
            "south": {"num_rows": 500, "metrics": {"roc_auc": entry(0.97, 0.91, 0.03, 0.09)}},
            "tiny": {"num_rows": 5, "metrics": {"roc_auc": entry(0.2, 0.9, -0.9, -0.5)}},
        }
    }
    report = evaluation({"roc_auc": entry(0.95, 0.90, 0.03, 0.07)}, slices=slices)
    found = judge(report, slices=["region"])
    assert not found.passed
    assert "slice region=north is worse: roc_auc -0.1500 [-0.2200, -0.0800] on 120 rows" in found.reason
    assert "tiny" not in found.reason  # fewer than min_slice_rows: reported, not judged
    assert [s["value"] for s in found.slices if s.get("skipped")] == ["tiny"]
    assert judge(report, slices={"region": 0.3}).passed
    with pytest.raises(InvalidParameterError, match="slices"):
        judge(report, slices=["plan"])  # the evaluation did not compute it


def test_a_comparison_made_the_other_way_round_is_turned_round():
    report = evaluation({"roc_auc": entry(0.90, 0.95, -0.07, -0.03)})
    found = comparison_of(report, "champion", "challenger")
    assert found["metrics"]["roc_auc"]["difference"] == pytest.approx(0.05)
    assert found["metrics"]["roc_auc"]["intervals"]["0.95"] == pytest.approx([0.03, 0.07])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("confidence", 0.97),
        ("confidence", "high"),
        ("min_improvement", -0.1),
        ("min_relative_improvement", float("nan")),
        ("guardrails", ["log_loss"]),
        ("guardrails", {"log_loss": -1}),
        ("min_rows", 10.5),
        ("slices", {"region": "wide"}),
        ("min_slice_rows", 0),
    ],
)
def test_bad_options_are_refused_by_name(option, value):
    with pytest.raises(InvalidParameterError) as err:
        GateOptions.parse(**{option: value})
    assert option in str(err.value)


def test_templated_strings_are_accepted():
    parsed = GateOptions.parse(confidence="0.9", min_improvement="0.01", min_rows="200", slices="region")
    assert (parsed.confidence, parsed.min_improvement, parsed.min_rows, parsed.slices) == (
        0.9,
        0.01,
        200,
        {"region": 0},
    )
    assert GateOptions.parse(confidence="None").confidence is None


def test_the_audit_record_carries_both_scores_the_interval_and_each_rule():
    metrics = {
        "roc_auc": entry(0.95, 0.90, 0.03, 0.07, p_value=0.001, test="DeLong"),
        "log_loss": entry(0.3, 0.3, -0.01, 0.01),
    }
    found = judge(evaluation(metrics), guardrails={"log_loss": 0.02})
    record = gate_audit(found, GateOptions.parse(guardrails={"log_loss": 0.02}), 3, evaluation(metrics))["record"]
    assert record["champion_check"] == "compared against version 3"
    line = record["metric:roc_auc"]
    for part in ("challenger=0.95", "champion=0.9", "improvement=0.05", "interval=[+0.0300, +0.0700]", "p_value=0.001"):
        assert part in line
    assert "num_rows=640" in line
    assert line.endswith("passed")
    assert record["guardrail:log_loss"].endswith("passed")
    assert "tolerance=0.02" in record["guardrail:log_loss"]
    assert all(len(v) <= 256 for v in record.values())


def test_an_improvement_under_the_bar_says_which_bar_it_missed():
    # +0.05 with an interval clear of zero, but the bar is 0.10: the reason must name the bar
    found = judge(evaluation({"roc_auc": entry(0.95, 0.90, 0.03, 0.07)}), min_improvement=0.10)
    assert not found.passed
    assert "does not beat the champion by more than 0.1" in found.reason
