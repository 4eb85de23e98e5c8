"""Triggers: primitives only, serialize() round-trips, one event; execute_complete whitelists success."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_autogluon_cloud.backends.base import EndpointDescription, JobDescription, LogChunk
from airflow_autogluon_cloud.exceptions import (
    JobFailedError,
    JobTimeoutError,
    ResourceNotFoundError,
    TriggerEventError,
)
from airflow_autogluon_cloud.operators.base import raise_for_event
from airflow_autogluon_cloud.status import EndpointStatus, JobStatus
from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonEndpointTrigger, AutoGluonJobTrigger

pytestmark = pytest.mark.compat

HOOK_PARAMS = {
    "aws_conn_id": "aws_default",
    "region_name": "eu-west-1",
    "role_arn": None,
    "external_id": None,
    "backend": "local",
    "cloud_output_path": None,
    "local_root": "/tmp/agc-root",
}


@pytest.mark.parametrize(
    "trigger",
    [
        AutoGluonJobTrigger("training", "ag-af-fit-x", HOOK_PARAMS, poll_interval=7, max_poll_interval=60),
        AutoGluonJobTrigger("transform", "ag-af-bt-x", HOOK_PARAMS, stream_log=False),
        AutoGluonEndpointTrigger("ag-af-ep-x", HOOK_PARAMS, poll_interval=3, timeout_seconds=99),
        AutoGluonJobTrigger("training", "ag-af-fit-y", HOOK_PARAMS, waiting_since=1_700_000_000.5),
        AutoGluonEndpointTrigger("ag-af-ep-y", HOOK_PARAMS, waiting_since=1_700_000_000.5),
    ],
)
def test_serialize_round_trip(trigger):
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert cls is type(trigger)
    rebuilt = cls(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    # only primitives cross the boundary
    import json

    json.dumps(kwargs)


def test_serialize_round_trip_through_airflow_serde():
    from airflow.serialization.serialized_objects import BaseSerialization

    trigger = AutoGluonJobTrigger("training", "ag-af-fit-x", HOOK_PARAMS, poll_interval=5)
    classpath, kwargs = trigger.serialize()
    restored = BaseSerialization.deserialize(BaseSerialization.serialize(kwargs))
    assert restored == kwargs


class FakeHook:
    """Scripted job states, standing in for a backend (the waiting logic is what is tested)."""

    backend_name = "local"

    def __init__(self, statuses, failure_reason=None, max_runtime=3600):
        self.statuses = list(statuses)
        self.calls = 0
        self.failure_reason = failure_reason
        self.max_runtime = max_runtime
        self.backend = self
        self.wait_slack_seconds = 600.0

    def describe_job(self, kind, name):
        self.calls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return JobDescription(
            name, kind, JobStatus(status), self.failure_reason, created_at=time.time(), max_runtime=self.max_runtime
        )

    def describe_endpoint(self, name):
        self.calls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return EndpointDescription(name, EndpointStatus(status), failure_reason=self.failure_reason)

    def stream_log(self, kind, name, cursor):
        return cursor

    def read_log(self, kind, name, cursor):
        return LogChunk([], {})

    def log_tail(self, kind, name, lines=20):
        return "Traceback: boom"


async def _collect(trigger):
    return [event async for event in trigger.run()]


def _run(trigger, hook, monkeypatch):
    sleeps: list[float] = []

    async def fake_sleep(seconds):
        sleeps.append(seconds)

    monkeypatch.setattr(trigger, "_hook", lambda: hook, raising=False)
    monkeypatch.setattr("airflow_autogluon_cloud.triggers.autogluon_cloud.asyncio.sleep", fake_sleep)
    monkeypatch.setattr(
        "airflow_autogluon_cloud.hooks.autogluon_cloud.AutoGluonCloudHook", lambda **kw: hook, raising=True
    )
    events = asyncio.run(_collect(trigger))
    return events, sleeps


def test_job_trigger_success_after_polls_backs_off(monkeypatch):
    hook = FakeHook(["InProgress"] * 5 + ["Completed"])
    events, sleeps = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS, poll_interval=10), hook, monkeypatch)
    assert len(events) == 1
    assert events[0].payload["status"] == "success"
    assert events[0].payload["job_name"] == "j"
    assert len(sleeps) == 5
    assert sleeps[-1] > sleeps[0]
    assert max(sleeps) <= 40  # default ceiling: 4x poll interval


def test_trigger_rebuilt_after_a_restart_resumes_at_the_interval_it_had_reached(monkeypatch):
    # A triggerer restart 20 minutes into the wait: the rebuilt trigger checks once, then sleeps
    # at the backed-off interval instead of polling fast again from poll_interval.
    hook = FakeHook(["InProgress", "InProgress", "Completed"])
    trigger = AutoGluonJobTrigger("training", "j", HOOK_PARAMS, poll_interval=30, waiting_since=time.time() - 1200)
    events, sleeps = _run(trigger, hook, monkeypatch)
    assert events[0].payload["status"] == "success"
    assert sleeps[0] == 120  # the ceiling (4 x 30 s), reached long before 20 minutes
    fresh = AutoGluonJobTrigger("training", "j", HOOK_PARAMS, poll_interval=30, waiting_since=time.time())
    _, fresh_sleeps = _run(fresh, FakeHook(["InProgress", "Completed"]), monkeypatch)
    assert fresh_sleeps[0] == 30


def test_interval_after_follows_the_backoff_schedule():
    from airflow_autogluon_cloud.polling import interval_after

    assert interval_after(0, 30, 120) == 30
    assert interval_after(29, 30, 120) == 30
    assert interval_after(30, 30, 120) == 45
    assert interval_after(75, 30, 120) == 67.5
    assert interval_after(10_000, 30, 120) == 120
    assert interval_after(10_000, 30, 30) == 30


@pytest.mark.parametrize(("final", "status"), [("Failed", "failed"), ("Stopped", "stopped")])
def test_job_trigger_failure_carries_reason_and_log(monkeypatch, final, status):
    hook = FakeHook(["InProgress", final], failure_reason="AlgorithmError: label missing")
    events, _ = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS, poll_interval=1), hook, monkeypatch)
    assert events[0].payload["status"] == status
    assert "label missing" in events[0].payload["message"]
    assert "boom" in events[0].payload["message"]


def test_job_trigger_not_found_and_transient_errors(monkeypatch):
    hook = FakeHook([ResourceNotFoundError("Training job", "j", "local")])
    events, _ = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS), hook, monkeypatch)
    assert events[0].payload["status"] == "not_found"
    hook = FakeHook([RuntimeError("throttled"), RuntimeError("throttled"), "Completed"])
    events, _ = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS), hook, monkeypatch)
    assert events[0].payload["status"] == "success"
    hook = FakeHook([RuntimeError("down")])
    events, _ = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS), hook, monkeypatch)
    assert events[0].payload["status"] == "error"
    assert hook.calls == 5


def test_job_trigger_times_out_past_max_runtime(monkeypatch):
    hook = FakeHook(["InProgress"], max_runtime=1)
    hook.wait_slack_seconds = -10
    events, _ = _run(AutoGluonJobTrigger("training", "j", HOOK_PARAMS), hook, monkeypatch)
    assert events[0].payload["status"] == "timeout"


def test_endpoint_trigger(monkeypatch):
    hook = FakeHook(["Creating", "Creating", "InService"])
    events, _ = _run(AutoGluonEndpointTrigger("e", HOOK_PARAMS, poll_interval=1), hook, monkeypatch)
    assert events[0].payload["status"] == "success"
    hook = FakeHook(["Updating", "Failed"], failure_reason="image pull failed")
    events, _ = _run(AutoGluonEndpointTrigger("e", HOOK_PARAMS, poll_interval=1), hook, monkeypatch)
    assert events[0].payload["status"] == "failed"
    assert "image pull" in events[0].payload["message"]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, TriggerEventError),
        ({}, TriggerEventError),
        ({"status": "failed", "job_name": "j", "message": "bad", "job_status": "Failed"}, JobFailedError),
        ({"status": "stopped", "job_name": "j", "message": "stop", "job_status": "Stopped"}, JobFailedError),
        ({"status": "timeout", "job_name": "j"}, JobTimeoutError),
        ({"status": "not_found", "job_name": "j"}, ResourceNotFoundError),
        ({"status": "error", "job_name": "j", "message": "x"}, TriggerEventError),
        ({"status": "weird", "job_name": "j"}, TriggerEventError),
    ],
)
def test_execute_complete_raises_unless_explicit_success(event, error):
    with pytest.raises(error):
        raise_for_event(event, "training", "j")


def test_execute_complete_success_passes_through():
    event = {"status": "success", "job_name": "j"}
    assert raise_for_event(event, "training", "j") is event
