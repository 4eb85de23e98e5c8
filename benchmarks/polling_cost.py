"""3. Polling cost: status calls per hour of waiting on one job.

Every waiter runs its real code against a fake clock: the blocking wait in the operators, the
trigger (with a triggerer restart halfway), the sensors in poke/reschedule mode (Airflow's own
``_get_next_poke_interval``), and the Amazon provider's ``SageMakerHook.check_status`` loop. The
status call is counted; nothing waits for real. The Amazon provider's deferrable operators and
sensor poll at a fixed interval, so their figure is 3600 / that interval, read from their defaults.

Nothing here is timed, so the machine's load changes nothing; only the jitter of the backoff is
random, so a count can differ by one between runs. The section is repeated 5 times (about two
seconds each): each count is the median, with its min-max.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from typing import Any

from common import WORK, spread

HOUR = 3600.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _counting_hook(clock: FakeClock, calls: list[float], job_ends_at: float) -> Any:
    from airflow_autogluon_cloud.backends.base import JobDescription
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
    from airflow_autogluon_cloud.status import JobStatus

    # The backend's state store is created but never holds a job: every status call is faked.
    hook = AutoGluonCloudHook(aws_conn_id=None, backend="local", local_root=str(WORK / "polling-backend"))

    def describe_job(kind: str, name: str) -> JobDescription:
        calls.append(clock.now)
        status = JobStatus.COMPLETED if clock.now >= job_ends_at else JobStatus.IN_PROGRESS
        return JobDescription(name=name, kind=kind, status=status, created_at=None, max_runtime=None)

    # Every waiter reaches the status through the backend (the hook's job service, the trigger's hook).
    hook.backend.describe_job = describe_job  # type: ignore[method-assign]
    return hook


def ours_blocking(check_interval: float = 30) -> dict[str, Any]:
    clock = FakeClock()
    calls: list[float] = []
    hook = _counting_hook(clock, calls, clock.now + HOUR)
    hook.wait_for_job("training", "bench", check_interval=check_interval, stream_log=False, sleep=clock.sleep)
    return {"calls_per_hour": len(calls)}


def ours_trigger(check_interval: float = 30, restart_after: float = HOUR / 2) -> dict[str, Any]:
    """The trigger for an hour, with the triggerer killed and the trigger rebuilt at ``restart_after``."""
    import airflow_autogluon_cloud.triggers.autogluon_cloud as trig_mod
    from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

    clock = FakeClock()
    start = clock.now
    calls: list[float] = []
    hook = _counting_hook(clock, calls, start + HOUR)
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        clock.sleep(seconds)
        await real_sleep(0)

    saved = (trig_mod.time, trig_mod.asyncio.sleep, AutoGluonJobTrigger._hook)
    trig_mod.time = clock  # type: ignore[assignment]
    trig_mod.asyncio.sleep = fake_sleep  # type: ignore[assignment]
    AutoGluonJobTrigger._hook = lambda self: hook  # type: ignore[method-assign]
    try:
        trigger = AutoGluonJobTrigger(
            "training",
            "bench",
            hook.hook_params(),
            poll_interval=check_interval,
            stream_log=False,
            waiting_since=clock.now,  # as the operators set it when they defer
        )

        async def first_life() -> None:
            gen = trigger.run()
            task = asyncio.ensure_future(gen.__anext__())
            while clock.now < start + restart_after and not task.done():
                await real_sleep(0)
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, StopAsyncIteration):
                pass

        asyncio.run(first_life())
        _, kwargs = trigger.serialize()
        restarted_at = clock.now
        reborn = AutoGluonJobTrigger(**kwargs)

        async def second_life() -> Any:
            return await reborn.run().__anext__()

        event = asyncio.run(second_life())
    finally:
        trig_mod.time, trig_mod.asyncio.sleep, AutoGluonJobTrigger._hook = saved  # type: ignore[assignment,method-assign]
    window = 600
    before = sum(1 for t in calls if restarted_at - window <= t < restarted_at)
    after = sum(1 for t in calls if restarted_at <= t < restarted_at + window)
    return {
        "calls_per_hour": len(calls),
        "restart_at_s": round(restarted_at - start),
        "calls_in_10_min_before_restart": before,
        "calls_in_10_min_after_restart": after,
        "event": event.payload["status"],
    }


def sensor_pokes(sensor: Any) -> int:
    """Pokes in an hour for a sensor in poke/reschedule mode, by Airflow's own interval function."""
    elapsed = 0.0
    pokes = 0
    count = 1
    while elapsed < HOUR:
        pokes += 1
        interval = sensor._get_next_poke_interval(time.time() - elapsed, lambda e=elapsed: e, count)
        elapsed += interval
        count += 1
    return pokes


def ours_sensor(mode: str) -> dict[str, Any]:
    from airflow_autogluon_cloud.sensors.autogluon_cloud import AGFitJobSensor

    sensor = AGFitJobSensor(task_id="s", job_name="bench", mode=mode, deferrable=False)
    return {
        "calls_per_hour": sensor_pokes(sensor),
        "poke_interval": sensor.poke_interval,
        "exponential_backoff": sensor.exponential_backoff,
    }


def amazon_blocking() -> dict[str, Any]:
    import airflow.providers.amazon.aws.hooks.sagemaker as sm_hooks
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    check_interval = inspect.signature(SageMakerTrainingOperator.__init__).parameters["check_interval"].default
    clock = FakeClock()
    start = clock.now
    calls: list[float] = []

    def describe(name: str) -> dict[str, Any]:
        calls.append(clock.now)
        return {"TrainingJobStatus": "Completed" if clock.now >= start + HOUR else "InProgress"}

    hook = sm_hooks.SageMakerHook(aws_conn_id=None)
    saved = sm_hooks.time
    sm_hooks.time = clock  # type: ignore[assignment]
    try:
        hook.check_status("bench", "TrainingJobStatus", describe, check_interval)
    finally:
        sm_hooks.time = saved
    return {"calls_per_hour": len(calls), "check_interval": check_interval}


def amazon_deferrable() -> dict[str, Any]:
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    op = SageMakerTrainingOperator(task_id="t", config={"TrainingJobName": "bench"}, deferrable=True)
    return {
        "calls_per_hour": round(HOUR / op.check_interval),
        "check_interval": op.check_interval,
        "gives_up_after_s": op.check_interval * op.max_attempts,
    }


def amazon_sensor() -> dict[str, Any]:
    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTrainingSensor

    sensor = SageMakerTrainingSensor(task_id="s", job_name="bench")
    return {
        "calls_per_hour": sensor_pokes(sensor),
        "poke_interval": sensor.poke_interval,
        "exponential_backoff": sensor.exponential_backoff,
    }


def measure_all() -> dict[str, Any]:
    return {
        "AGFitOperator, blocking (check_interval=30)": ours_blocking(),
        "AGFitOperator / sensors, deferred trigger (triggerer restarted at 30 min)": ours_trigger(),
        "AGFitJobSensor, poke or reschedule mode": ours_sensor("reschedule"),
        "SageMakerTrainingOperator, blocking (defaults)": amazon_blocking(),
        "SageMakerTrainingOperator, deferrable (defaults)": amazon_deferrable(),
        "SageMakerTrainingSensor (defaults)": amazon_sensor(),
    }


def run(quick: bool = False) -> dict[str, Any]:
    # No real waiting (a fake clock), but the backoff jitter is random (Airflow seeds the sensors'
    # with the start time), so a count can move by one between repeats: median of 5, with min-max.
    repeats = 2 if quick else 5
    samples = [measure_all() for _ in range(repeats)]
    rows = samples[len(samples) // 2]
    for label, row in rows.items():
        med, low, high = spread([s[label]["calls_per_hour"] for s in samples], 0)
        row["calls_per_hour"] = int(med)
        row["calls_per_hour_range"] = [int(low), int(high)]
    deterministic = all(s == samples[0] for s in samples)
    ours = max(v["calls_per_hour"] for k, v in rows.items() if k.startswith("AG"))
    theirs = min(v["calls_per_hour"] for k, v in rows.items() if k.startswith("SageMaker"))
    trig = rows["AGFitOperator / sensors, deferred trigger (triggerer restarted at 30 min)"]
    return {
        "repeats": repeats,
        "deterministic": deterministic,
        "rows": rows,
        "target": "no more status calls than the Amazon provider's defaults, with backoff; no burst after a restart",
        "target_met": ours <= theirs
        and trig["calls_in_10_min_after_restart"] <= trig["calls_in_10_min_before_restart"] + 1,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
