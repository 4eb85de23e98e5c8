"""What a job used and, with a price table, what it cost: the ``usage`` dict of job XComs.

``billable_seconds`` comes from the backend (SageMaker: ``BillableTimeInSeconds`` x instances for
training and evaluation, ``(end - start)`` x instances for a transform; ``None`` on this machine,
which bills nothing and reports ``cpu_seconds`` and ``wall_seconds`` instead). With
``[autogluon_cloud] instance_prices`` (instance type -> USD per hour) the dict also carries
``estimated_cost_usd``.
"""

from __future__ import annotations

from typing import Any

from airflow_autogluon_cloud.backends.specs import JobDescription


def usage(desc: JobDescription, prices: dict[str, float]) -> dict[str, Any]:
    """The job's usage, with an estimated cost when its instance type has a price."""
    out = dict(desc.usage)
    price = prices.get(str(out.get("instance_type")))
    billable = out.get("billable_seconds")
    if price is not None and billable is not None:
        out["usd_per_hour"] = price
        out["estimated_cost_usd"] = round(billable / 3600 * price, 6)
    return out


def endpoint_usage(instance_type: str | None, instance_count: int, prices: dict[str, float]) -> dict[str, Any]:
    """An endpoint bills by the hour while it is up: its instances and, with a price, the hourly cost."""
    out: dict[str, Any] = {"instance_type": instance_type, "instance_count": instance_count}
    price = prices.get(str(instance_type))
    if price is not None:
        out["estimated_usd_per_hour"] = round(price * instance_count, 6)
    return out
