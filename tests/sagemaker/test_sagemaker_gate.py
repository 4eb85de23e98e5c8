"""SageMaker backend, the promotion gate under moto: the evaluation job asks for the paired
statistics, the decision's audit lands in the model package's metadata, and the approval re-reads
the latest approved version just before ``UpdateModelPackage`` and again after it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.sagemaker.test_sagemaker_lifecycle import _read, put_model

pytestmark = pytest.mark.compat


def test_evaluation_job_asks_for_slices_and_resamples(hook, record):
    holdout = pd.DataFrame({"x": range(20), "region": ["n", "s"] * 10, "y": [0, 1] * 10})
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    with pytest.raises(InvalidParameterError, match="n_resamples"):
        hook.evaluation.start(
            job_name="ag-af-eval-bad", data=holdout, models=[put_model("ag-af-fit-s0")], n_resamples=5
        )
    with pytest.raises(InvalidParameterError, match="plan"):  # a slice column the data does not have
        hook.evaluation.start(
            job_name="ag-af-eval-bad", data=holdout, models=[put_model("ag-af-fit-s0")], slices=["plan"]
        )
    assert recorder.calls["CreateTrainingJob"] == []
    hook.evaluation.start(
        job_name="ag-af-eval-slices",
        data=holdout,
        models={"champion": put_model("ag-af-fit-s1"), "challenger": put_model("ag-af-fit-s2")},
        slices=["region"],
        n_resamples=2000,
        seed=3,
    )
    [request] = recorder.calls["CreateTrainingJob"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    args = json.loads(_read(channels["eval_args"]))
    assert (args["baseline"], args["slices"], args["n_resamples"], args["seed"]) == ("champion", ["region"], 2000, 3)


def evaluation_against(champion, challenger_uri: str, improvement: float) -> dict:
    """A completed evaluation (as the evaluate operator pushes it) of a challenger vs ``champion``."""
    return {
        "status": "Completed",
        "job_name": "ag-af-eval-gate",
        "num_rows": 640,
        "data_uri": "s3://agc-test-bucket/holdout.csv",
        "eval_metric": "roc_auc",
        "metric_directions": {"roc_auc": True, "log_loss": False},
        "model_uris": {"challenger": challenger_uri, "champion": champion.model_uri},
        "model_versions": {"champion": {"group": champion.group, "version": champion.version}},
        "metrics": {
            "challenger": {"roc_auc": 0.90 + improvement, "log_loss": 0.30},
            "champion": {"roc_auc": 0.90, "log_loss": 0.30},
        },
        "comparisons": {
            "challenger": {
                "baseline": "champion",
                "slices": {},
                "metrics": {
                    "roc_auc": {
                        "model": 0.90 + improvement,
                        "baseline": 0.90,
                        "difference": improvement,
                        "num_rows": 640,
                        "intervals": {"0.95": [improvement - 0.01, improvement + 0.01]},
                        "p_value": 0.001,
                        "test": "DeLong",
                    },
                    "log_loss": {
                        "model": 0.30,
                        "baseline": 0.30,
                        "difference": 0.0,
                        "num_rows": 640,
                        "intervals": {"0.95": [-0.004, 0.004]},
                    },
                },
            }
        },
    }


def test_an_approval_rereads_the_champion_around_the_update_and_records_the_audit(hook, record):
    client = hook.backend.client("sagemaker")
    recorder = record(client, "UpdateModelPackage", "ListModelPackages")
    champion = hook.registry.register(group="churn-gate", model_uri=put_model("ag-af-fit-g1"))
    champion = hook.registry.set_approval("churn-gate", champion.version, "Approved", "airflow:d/first/gate")
    uri = put_model("ag-af-fit-g2")
    challenger = hook.registry.register(group="churn-gate", model_uri=uri)
    recorder.calls["ListModelPackages"].clear()
    decision = hook.registry.promote(
        group="churn-gate",
        challenger_version=challenger.version,
        evaluation=evaluation_against(champion, uri, 0.05),
        set_by="airflow:d/second/gate",
        guardrails={"log_loss": 0.01},
    )
    assert decision["decision"] == "approved", decision["reason"]
    assert decision["champion_version"] == champion.version
    assert decision["improvement_interval"] == pytest.approx([0.04, 0.06])
    update = recorder.calls["UpdateModelPackage"][-1]
    assert update["ModelApprovalStatus"] == "Approved"
    meta = update["CustomerMetadataProperties"]
    assert meta["ag:gate:champion_check"] == f"compared against version {champion.version}"
    # metadata values allow no brackets or commas: the interval is its two ends
    assert "interval=+0.0400 +0.0600" in meta["ag:gate:metric:roc_auc"]
    assert meta["ag:status_reason"].startswith("roc_auc +0.0500 +0.0400 +0.0600 at 95 pct on 640 rows DeLong p=0.001")
    assert "p_value=0.001" in meta["ag:gate:metric:roc_auc"]
    assert meta["ag:gate:guardrail:log_loss"].endswith("passed")
    assert all(len(v) <= 256 for v in meta.values())
    assert len(meta) <= 50
    approved_lists = [c for c in recorder.calls["ListModelPackages"] if c.get("ModelApprovalStatus") == "Approved"]
    assert len(approved_lists) >= 2  # read just before the update, and again after it
    stored = hook.registry.get("churn-gate", challenger.version)
    assert stored.status_audit["metric:roc_auc"] == meta["ag:gate:metric:roc_auc"]


def test_a_champion_approved_since_the_evaluation_rejects_the_challenger(hook):
    champion = hook.registry.register(group="churn-cas", model_uri=put_model("ag-af-fit-c1"))
    champion = hook.registry.set_approval("churn-cas", champion.version, "Approved", "airflow:d/first/gate")
    uri = put_model("ag-af-fit-c2")
    challenger = hook.registry.register(group="churn-cas", model_uri=uri)
    evaluation = evaluation_against(champion, uri, 0.05)
    other = hook.registry.register(group="churn-cas", model_uri=put_model("ag-af-fit-c3"))
    hook.registry.set_approval("churn-cas", other.version, "Approved", "airflow:d/other-run/gate")
    decision = hook.registry.promote(
        group="churn-cas", challenger_version=challenger.version, evaluation=evaluation, set_by="airflow:d/late/gate"
    )
    assert decision["decision"] == "rejected"
    assert decision["reason"].startswith(
        f"champion changed since evaluation: version {other.version} was approved by airflow:d/other-run/gate"
    )
    assert hook.registry.get("churn-cas", challenger.version).approval_status == "Rejected"
    assert hook.registry.latest_approved("churn-cas").version == other.version


def test_a_version_approved_inside_the_window_is_recorded(hook, monkeypatch):
    champion = hook.registry.register(group="churn-window", model_uri=put_model("ag-af-fit-w1"))
    champion = hook.registry.set_approval("churn-window", champion.version, "Approved", "first")
    uri = put_model("ag-af-fit-w2")
    challenger = hook.registry.register(group="churn-window", model_uri=uri)
    racer = hook.registry.register(group="churn-window", model_uri=put_model("ag-af-fit-w3"))
    api = hook.backend.registry.api
    real_call = api.call

    def racing_call(operation, **params):
        # another run approves its version between this gate's check and its update
        if operation == "update_model_package" and params.get("ModelApprovalStatus") == "Approved":
            if hook.registry.get("churn-window", racer.version).approval_status != "Approved":
                real_call("update_model_package", ModelPackageArn=racer.arn, ModelApprovalStatus="Approved")
        return real_call(operation, **params)

    monkeypatch.setattr(api, "call", racing_call)
    decision = hook.registry.promote(
        group="churn-window",
        challenger_version=challenger.version,
        evaluation=evaluation_against(champion, uri, 0.05),
        set_by="airflow:d/gate",
    )
    assert decision["decision"] == "approved"
    assert decision["approved_between"] == [racer.version]
