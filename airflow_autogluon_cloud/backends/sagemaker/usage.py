"""What SageMaker jobs and endpoints use: billable seconds, invocations, data capture.

What a job used, from its description: the instances and the billable seconds.

Training (and evaluation, a training job): ``BillableTimeInSeconds`` is one instance's wall-clock
billable time, so the job's is that times ``ResourceConfig.InstanceCount`` (DescribeTrainingJob's
documentation). Transform: DescribeTransformJob has no billable time; the instances run from
``TransformStartTime`` to ``TransformEndTime``, so ``(end - start) x InstanceCount``.
"""

from __future__ import annotations

import datetime
import math
import time
from typing import Any

from airflow_autogluon_cloud.backends.sagemaker.api import epoch


def training_usage(desc: dict[str, Any]) -> dict[str, Any]:
    resources = desc.get("ResourceConfig") or {}
    count = int(resources.get("InstanceCount") or 1)
    billable = desc.get("BillableTimeInSeconds")
    return {
        "instance_type": resources.get("InstanceType"),
        "instance_count": count,
        "billable_seconds": None if billable is None else float(billable) * count,
    }


def transform_usage(desc: dict[str, Any]) -> dict[str, Any]:
    resources = desc.get("TransformResources") or {}
    count = int(resources.get("InstanceCount") or 1)
    start, end = epoch(desc.get("TransformStartTime")), epoch(desc.get("TransformEndTime"))
    return {
        "instance_type": resources.get("InstanceType"),
        "instance_count": count,
        "billable_seconds": None if start is None or end is None else round(max(end - start, 0.0) * count, 3),
    }


def invocations_since(cloudwatch: Any, endpoint_name: str, since: float) -> int:
    """The endpoint's ``Invocations`` (CloudWatch, ``AWS/SageMaker``, its ``AllTraffic`` variant) since
    ``since``: one datapoint over whole minutes (CloudWatch's granularity), from the minute of
    ``since`` to the end of the current one, so the count errs on keeping an endpoint."""
    now = math.ceil(time.time() / 60) * 60
    period = max(60, math.ceil((now - since) / 60) * 60)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=datetime.datetime.fromtimestamp(now - period, tz=datetime.UTC),
        EndTime=datetime.datetime.fromtimestamp(now, tz=datetime.UTC),
        Period=period,
        Statistics=["Sum"],
    )
    return int(sum(point.get("Sum", 0) for point in answer.get("Datapoints", [])))


def data_capture_config(capture: dict[str, Any]) -> dict[str, Any]:
    """An endpoint configuration's ``DataCaptureConfig``: requests and answers, CSV and JSON kept as text."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": capture["sampling_percentage"],
        "DestinationS3Uri": capture["destination"],
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonl"],
        },
    }
