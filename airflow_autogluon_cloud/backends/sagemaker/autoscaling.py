"""Application Auto Scaling for an endpoint's ``AllTraffic`` variant: target tracking on invocations.

The scalable target is ``endpoint/<name>/variant/AllTraffic`` on the instance-count dimension;
one target-tracking policy on ``SageMakerVariantInvocationsPerInstance`` scales it. Removal
deletes the policy, then deregisters the target (AWS deregistration also removes policies, but
saying so explicitly keeps a partial failure from leaving a policy behind).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_autogluon_cloud.backends.sagemaker.api import SageMakerApi, error_code, error_message

log = logging.getLogger(__name__)

SERVICE = "application-autoscaling"
NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
VARIANT = "AllTraffic"


def resource_id(endpoint_name: str, variant: str = VARIANT) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-invocations-per-instance"


class EndpointAutoscaling:
    """Registers, reads and removes an endpoint variant's scaling.

    :param api: the SageMaker backend's API wrapper (its retries apply here too).
    """

    def __init__(self, api: SageMakerApi) -> None:
        self.api = api

    def _target(self, endpoint_name: str) -> dict[str, str]:
        return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(endpoint_name), "ScalableDimension": DIMENSION}

    def describe(self, endpoint_name: str) -> dict[str, Any] | None:
        """The registered policy (as :func:`~airflow_autogluon_cloud.endpoint_options.autoscaling`
        returns it), or ``None`` when the variant is not scalable.

        A role without Application Auto Scaling permissions cannot have registered any: ``None``.
        """
        from botocore.exceptions import ClientError

        target = self._target(endpoint_name)
        try:
            found = self.api.call(
                "describe_scalable_targets",
                SERVICE,
                ServiceNamespace=NAMESPACE,
                ResourceIds=[target["ResourceId"]],
                ScalableDimension=DIMENSION,
            ).get("ScalableTargets", [])
        except ClientError as err:
            if not error_code(err).startswith("AccessDenied"):
                raise
            log.warning("No Application Auto Scaling access for endpoint %s: %s", endpoint_name, error_message(err))
            return None
        if not found:
            return None
        policy: dict[str, Any] = {"min_capacity": found[0]["MinCapacity"], "max_capacity": found[0]["MaxCapacity"]}
        policies = self.api.call("describe_scaling_policies", SERVICE, **target).get("ScalingPolicies", [])
        for item in policies:
            if item.get("PolicyName") == policy_name(endpoint_name):
                config = item.get("TargetTrackingScalingPolicyConfiguration", {})
                policy["target_invocations_per_instance"] = float(config.get("TargetValue", 0))
                policy["scale_in_cooldown"] = config.get("ScaleInCooldown")
                policy["scale_out_cooldown"] = config.get("ScaleOutCooldown")
        return policy

    def put(self, endpoint_name: str, policy: dict[str, Any]) -> None:
        """Register (or update) the scalable target, then its target-tracking policy."""
        target = self._target(endpoint_name)
        self.api.call(
            "register_scalable_target",
            SERVICE,
            **target,
            MinCapacity=int(policy["min_capacity"]),
            MaxCapacity=int(policy["max_capacity"]),
        )
        self.api.call(
            "put_scaling_policy",
            SERVICE,
            PolicyName=policy_name(endpoint_name),
            **target,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(policy["target_invocations_per_instance"]),
                "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                "ScaleInCooldown": int(policy["scale_in_cooldown"]),
                "ScaleOutCooldown": int(policy["scale_out_cooldown"]),
            },
        )

    def delete(self, endpoint_name: str) -> bool:
        """Delete the policy and deregister the target; return whether a target was registered."""
        from botocore.exceptions import ClientError

        if self.describe(endpoint_name) is None:  # nothing registered (or no access to any)
            return False
        target = self._target(endpoint_name)
        try:
            self.api.call("delete_scaling_policy", SERVICE, PolicyName=policy_name(endpoint_name), **target)
        except ClientError as err:
            if error_code(err) != "ObjectNotFoundException":
                raise
        try:
            self.api.call("deregister_scalable_target", SERVICE, **target)
        except ClientError as err:
            if error_code(err) != "ObjectNotFoundException":
                raise
            return False
        return True
