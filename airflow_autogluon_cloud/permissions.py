"""The trust relationship and least-privilege IAM policy this provider needs on SageMaker.

Every document is built fresh on each call (no module-level template is mutated), so generating
for two accounts in one process gives two correct documents, and generating twice gives the same.

What the policy grants, and nothing more:

* SageMaker create/describe/stop/delete/update/invoke only on resources whose names start with
  :data:`~airflow_autogluon_cloud.naming.NAME_PREFIX` (the names this provider generates);
  list calls, which have no resource, on ``*``.
* ``iam:PassRole`` only for the execution role, and only to ``sagemaker.amazonaws.com``.
* The model registry (model package groups and their versions) in the account: group names are
  the user's, so they are not limited to the prefix.
* Application Auto Scaling for autoscaled endpoints: writes on the account's scalable targets
  (their ids are generated), describe calls on ``*``, the CloudWatch alarms its target tracking
  creates for prefixed endpoints, and the service-linked role it needs the first time.
* S3 only on the given bucket.
* CloudWatch Logs only on the ``/aws/sagemaker/*`` log groups; ECR image pulls for the AutoGluon
  containers.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.naming import NAME_PREFIX

TRUST_FILE = "ag_cloud_sagemaker_trust_relationship.json"
POLICY_FILE = "ag_cloud_sagemaker_iam_policy.json"
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_ROLE_RE = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")

_SAGEMAKER_RESOURCE_ACTIONS = [
    "sagemaker:AddTags",
    "sagemaker:CreateEndpoint",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateModel",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateTransformJob",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeModel",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:InvokeEndpoint",
    "sagemaker:ListTags",
    "sagemaker:StopTrainingJob",
    "sagemaker:StopTransformJob",
    "sagemaker:UpdateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
]
_SAGEMAKER_REGISTRY_ACTIONS = [
    "sagemaker:AddTags",
    "sagemaker:CreateModelPackage",
    "sagemaker:CreateModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListTags",
    "sagemaker:UpdateModelPackage",
]
# Scalable targets have generated ids (not the endpoint's name), so the writes are scoped to the
# account; Application Auto Scaling also checks DescribeEndpoint and UpdateEndpointWeightsAndCapacities
# on the endpoint itself, which the prefix limits. Its Describe calls take no resource.
_AUTOSCALING_ACTIONS = [
    "application-autoscaling:DeleteScalingPolicy",
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:RegisterScalableTarget",
]
_AUTOSCALING_READ_ACTIONS = [
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
]
# Target tracking creates and deletes its CloudWatch alarms in the caller's name; they are named
# TargetTracking-endpoint/<endpoint>/variant/<variant>-Alarm...
_AUTOSCALING_ALARM_ACTIONS = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"]
_SAGEMAKER_LIST_ACTIONS = [
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "sagemaker:ListModelPackageGroups",
    "sagemaker:ListModelPackages",
    "sagemaker:ListModels",
    "sagemaker:ListTrainingJobs",
    "sagemaker:ListTransformJobs",
]


def _validate(account_id: str, bucket: str, role_name: str) -> None:
    if not _ACCOUNT_RE.fullmatch(str(account_id)):
        raise InvalidParameterError("account_id", account_id, "an AWS account id is 12 digits.")
    if not _BUCKET_RE.fullmatch(str(bucket)):
        raise InvalidParameterError(
            "cloud_output_bucket", bucket, "give the bucket name only (no s3:// and no path), e.g. my-bucket."
        )
    if not _ROLE_RE.fullmatch(str(role_name)):
        raise InvalidParameterError("role_name", role_name, "IAM role names are 1-64 of [A-Za-z0-9+=,.@_-].")


def trust_relationship(account_id: str) -> dict[str, Any]:
    """Who may assume the role: SageMaker (to run jobs) and principals of ``account_id`` (Airflow)."""
    if not _ACCOUNT_RE.fullmatch(str(account_id)):
        raise InvalidParameterError("account_id", account_id, "an AWS account id is 12 digits.")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com", "AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def iam_policy(account_id: str, cloud_output_bucket: str, role_name: str = "AutoGluonSageMakerRole") -> dict[str, Any]:
    """The least-privilege policy for ``role_name`` in ``account_id`` using ``cloud_output_bucket``."""
    _validate(account_id, cloud_output_bucket, role_name)
    prefix = NAME_PREFIX
    sagemaker_arns = [
        f"arn:aws:sagemaker:*:{account_id}:{kind}/{prefix}*"
        for kind in ("training-job", "transform-job", "model", "endpoint-config", "endpoint")
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SageMakerProviderResources",
                "Effect": "Allow",
                "Action": list(_SAGEMAKER_RESOURCE_ACTIONS),
                "Resource": sagemaker_arns,
            },
            {
                "Sid": "SageMakerModelRegistry",
                "Effect": "Allow",
                "Action": list(_SAGEMAKER_REGISTRY_ACTIONS),
                "Resource": [
                    f"arn:aws:sagemaker:*:{account_id}:model-package-group/*",
                    f"arn:aws:sagemaker:*:{account_id}:model-package/*",
                ],
            },
            {
                "Sid": "EndpointAutoscaling",
                "Effect": "Allow",
                "Action": list(_AUTOSCALING_ACTIONS),
                "Resource": f"arn:aws:application-autoscaling:*:{account_id}:scalable-target/*",
            },
            {
                "Sid": "EndpointAutoscalingRead",
                "Effect": "Allow",
                "Action": list(_AUTOSCALING_READ_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "EndpointAutoscalingAlarms",
                "Effect": "Allow",
                "Action": list(_AUTOSCALING_ALARM_ACTIONS),
                "Resource": f"arn:aws:cloudwatch:*:{account_id}:alarm:TargetTracking-endpoint/{prefix}*",
            },
            {
                "Sid": "AutoscalingServiceLinkedRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": (
                    f"arn:aws:iam::{account_id}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ),
                "Condition": {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            },
            {
                # The idle sweep reads endpoints' Invocations; GetMetricStatistics has no resource-level scope.
                "Sid": "EndpointInvocationMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:GetMetricStatistics",
                "Resource": "*",
            },
            {
                "Sid": "SageMakerList",
                "Effect": "Allow",
                "Action": list(_SAGEMAKER_LIST_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "PassExecutionRoleToSageMaker",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": f"arn:aws:iam::{account_id}:role/{role_name}",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "S3Bucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{cloud_output_bucket}",
            },
            {
                "Sid": "S3Objects",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{cloud_output_bucket}/*",
            },
            {
                "Sid": "SageMakerLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:GetLogEvents",
                    "logs:PutLogEvents",
                ],
                "Resource": [
                    f"arn:aws:logs:*:{account_id}:log-group:/aws/sagemaker/*",
                    f"arn:aws:logs:*:{account_id}:log-group:/aws/sagemaker/*:log-stream:*",
                ],
            },
            {
                "Sid": "PullAutoGluonImages",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": "arn:aws:ecr:*:763104351884:repository/autogluon*",
            },
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
        ],
    }


def write_permission_files(
    account_id: str,
    cloud_output_bucket: str,
    output_dir: str | os.PathLike[str] = ".",
    role_name: str = "AutoGluonSageMakerRole",
) -> dict[str, str]:
    """Write the trust relationship and policy as JSON files; return their paths.

    :return: ``{"trust_relationship": path, "iam_policy": path}``.
    """
    policy = iam_policy(account_id, cloud_output_bucket, role_name)
    trust = trust_relationship(account_id)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trust_relationship": out / TRUST_FILE, "iam_policy": out / POLICY_FILE}
    for key, document in (("trust_relationship", trust), ("iam_policy", policy)):
        tmp = paths[key].with_suffix(".json.partial")
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, paths[key])
    return {k: str(v) for k, v in paths.items()}
