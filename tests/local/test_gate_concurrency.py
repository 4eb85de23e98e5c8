"""Concurrent promotion gates on the local backend: the approval is a compare-and-set in one SQLite
transaction, so overlapping runs never approve against a champion they were not compared with.

Each thread promotes through the hook, as ``AGPromoteModelOperator`` does, with an evaluation that
recorded the champion of its round (or none). The evaluations are written out here (each
challenger's quality is known), so the test is about the registry, not about the statistics.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

THREADS = 6
ROUNDS = 4


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


def fake_model(root: Path, name: str) -> str:
    path = root / name / "output" / "model.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not read by the gate")
    return str(path)


def scored(challenger_uri: str, quality: float, champion) -> dict:
    """An evaluation of one challenger against ``champion`` (a version, or None: no champion)."""
    report = {
        "status": "Completed",
        "job_name": "ag-af-eval-concurrent",
        "num_rows": 1000,
        "data_uri": "/holdout.csv",
        "eval_metric": "roc_auc",
        "metric_directions": {"roc_auc": True},
        "model_uris": {"challenger": challenger_uri},
        "metrics": {"challenger": {"roc_auc": quality}},
        "model_versions": {},
        "absent_models": {},
        "comparisons": {},
    }
    if champion is None:
        report["absent_models"] = {"champion": {"group": "g", "version": None}}
        return report
    version, champion_quality = champion
    difference = quality - champion_quality
    report["model_uris"]["champion"] = version.model_uri
    report["metrics"]["champion"] = {"roc_auc": champion_quality}
    report["model_versions"] = {"champion": {"group": version.group, "version": version.version}}
    report["comparisons"] = {
        "challenger": {
            "baseline": "champion",
            "slices": {},
            "metrics": {
                "roc_auc": {
                    "model": quality,
                    "baseline": champion_quality,
                    "difference": difference,
                    "num_rows": 1000,
                    "intervals": {"0.95": [difference - 0.01, difference + 0.01]},
                }
            },
        }
    }
    return report


def test_concurrent_gates_approve_only_against_the_champion_they_compared_with(hook, tmp_path):
    group = "ag-test-concurrent-gates"
    rng = random.Random(7)
    quality: dict[int, float] = {}
    champion = None  # (version, quality) of the latest approved, as the round's evaluations saw it
    for round_number in range(ROUNDS):
        entries = []
        for i in range(THREADS):
            uri = fake_model(tmp_path, f"ag-af-fit-r{round_number}-{i}")
            version = hook.registry.register(group=group, model_uri=uri, training_job=f"job-{round_number}-{i}")
            base = champion[1] if champion else 0.70
            quality[version.version] = base + rng.uniform(-0.05, 0.08)
            entries.append((version, scored(uri, quality[version.version], champion)))
        barrier = threading.Barrier(THREADS)

        def promote(item, barrier=barrier):
            version, evaluation = item
            barrier.wait(timeout=60)
            return hook.registry.promote(
                group=group,
                challenger_version=version.version,
                evaluation=evaluation,
                set_by=f"airflow:dag/run-{version.version}/gate",
            )

        with ThreadPoolExecutor(THREADS) as pool:
            decisions = list(pool.map(promote, entries))
        approved = [d for d in decisions if d["decision"] == "approved"]
        # one champion per round at most: every other gate saw its champion change and did not approve
        assert len(approved) <= 1, decisions
        expected = champion[0].version if champion else None
        for decision in decisions:
            assert decision["champion_version"] == expected
        if round_number == 0:
            assert len(approved) == 1  # no champion yet: someone must win
        for decision in decisions:
            if decision["decision"] == "rejected" and decision["reason"].startswith("champion changed"):
                winner = approved[0]["challenger_version"]
                assert decision["reason"].startswith(
                    f"champion changed since evaluation: version {winner} was approved by airflow:dag/run-{winner}/gate"
                )
        latest = hook.registry.latest_approved(group)
        approved_versions = [v.version for v in hook.registry.versions(group, "Approved")]
        # the latest approved is the best of the approved, on the same holdout
        assert quality[latest.version] == max(quality[v] for v in approved_versions)
        if approved:
            assert latest.version == approved[0]["challenger_version"]
            assert latest.status_audit["champion_check"] == (
                "compared against no champion" if expected is None else f"compared against version {expected}"
            )
        champion = (latest, quality[latest.version])
    assert len(hook.registry.versions(group, "Approved")) >= 2  # later rounds promoted too
