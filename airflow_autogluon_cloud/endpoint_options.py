"""How an endpoint is provisioned: serverless capacity and autoscaling, checked before anything exists.

``serverless_config`` (SageMaker's ``ProductionVariantServerlessConfig``):

- ``memory_size_in_mb``: 1024 to 6144, in steps of 1024;
- ``max_concurrency``: 1 to 200 requests in flight;
- ``idle_seconds`` (local backend only; SageMaker decides itself when to scale to zero): how long
  the local server waits without a request before it stops (default 300).

``autoscaling`` (Application Auto Scaling, target tracking on ``SageMakerVariantInvocationsPerInstance``):

- ``min_capacity``, ``max_capacity``: instance counts, 1 <= min <= max;
- ``target_invocations_per_instance``: invocations per instance per minute to aim for;
- ``scale_in_cooldown``, ``scale_out_cooldown``: seconds (default 300, as SageMaker's).
"""

from __future__ import annotations

import json
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
DEFAULT_IDLE_SECONDS = 300
DEFAULT_COOLDOWN_SECONDS = 300


def _as_dict(value: Any, parameter: str) -> dict[str, Any] | None:
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):  # a rendered template
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidParameterError(parameter, value, "pass a dict or a JSON object.") from None
    if not isinstance(value, dict):
        raise InvalidParameterError(parameter, value, "pass a dict.")
    return value


def _integer(options: dict[str, Any], key: str, parameter: str, low: int, high: int | None = None) -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidParameterError(f"{parameter}[{key!r}]", value, f"expected an integer {bound}.")
    return value


def _check_keys(options: dict[str, Any], parameter: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    for key in options:
        if key not in required + optional:
            allowed = ", ".join(required + optional)
            raise InvalidParameterError(f"{parameter}[{key!r}]", options[key], f"unknown key; allowed: {allowed}.")
    for key in required:
        if key not in options:
            raise InvalidParameterError(parameter, options, f"{key!r} is required.")


def serverless(value: Any, parameter: str = "serverless_config") -> dict[str, int] | None:
    """The checked serverless configuration, or ``None`` for an instance-based endpoint."""
    options = _as_dict(value, parameter)
    if options is None:
        return None
    _check_keys(options, parameter, ("memory_size_in_mb", "max_concurrency"), ("idle_seconds",))
    memory = options["memory_size_in_mb"]
    if isinstance(memory, bool) or memory not in MEMORY_SIZES_MB:
        raise InvalidParameterError(
            f"{parameter}['memory_size_in_mb']", memory, "expected 1024 to 6144 in steps of 1024 (MB)."
        )
    return {
        "memory_size_in_mb": int(memory),
        "max_concurrency": _integer(options, "max_concurrency", parameter, 1, MAX_CONCURRENCY),
        "idle_seconds": _integer(options, "idle_seconds", parameter, 1)
        if "idle_seconds" in options
        else DEFAULT_IDLE_SECONDS,
    }


def autoscaling(value: Any, parameter: str = "autoscaling") -> dict[str, int | float] | None:
    """The checked autoscaling policy, or ``None`` for a fixed instance count."""
    options = _as_dict(value, parameter)
    if options is None:
        return None
    _check_keys(
        options,
        parameter,
        ("min_capacity", "max_capacity", "target_invocations_per_instance"),
        ("scale_in_cooldown", "scale_out_cooldown"),
    )
    low = _integer(options, "min_capacity", parameter, 1)
    high = _integer(options, "max_capacity", parameter, 1)
    if high < low:
        raise InvalidParameterError(f"{parameter}['max_capacity']", high, f"must be >= min_capacity ({low}).")
    target = options["target_invocations_per_instance"]
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
        raise InvalidParameterError(
            f"{parameter}['target_invocations_per_instance']", target, "expected a positive number."
        )
    policy: dict[str, int | float] = {"min_capacity": low, "max_capacity": high}
    policy["target_invocations_per_instance"] = float(target)
    for key in ("scale_in_cooldown", "scale_out_cooldown"):
        policy[key] = _integer(options, key, parameter, 0) if key in options else DEFAULT_COOLDOWN_SECONDS
    return policy


def data_capture(value: Any, *, requires_s3: bool, parameter: str = "data_capture") -> dict[str, Any] | None:
    """The checked data capture: ``sampling_percentage`` (0-100) of requests and answers kept under
    ``destination`` (``s3://`` on SageMaker, a local directory on the local backend); ``None``: off."""
    options = _as_dict(value, parameter)
    if options is None:
        return None
    _check_keys(options, parameter, ("sampling_percentage", "destination"), ())
    share = options["sampling_percentage"]
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
        raise InvalidParameterError(parameter, options, "sampling_percentage is a whole number from 0 to 100.")
    destination = options["destination"]
    if not isinstance(destination, str) or not destination.strip():
        raise InvalidParameterError(parameter, options, "destination is where captures go: a path or s3:// URI.")
    if requires_s3 != destination.startswith("s3://"):
        where = "an s3:// URI (SageMaker writes captures to S3)" if requires_s3 else "a local directory"
        raise InvalidParameterError(parameter, options, f"destination must be {where} on this backend.")
    return {"sampling_percentage": share, "destination": destination.rstrip("/")}
