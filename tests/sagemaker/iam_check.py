"""Every AWS request the provider makes in the SageMaker tests must be allowed by the IAM policy
it generates (:func:`airflow_autogluon_cloud.permissions.iam_policy`).

A new API call that the policy lacks would pass every moto test and fail only at AWS with
``AccessDenied``; here it fails the test that makes it. Only the action is checked, not the
resource: the resource patterns are checked by the policy's own tests.
"""

from __future__ import annotations

import sys
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import airflow_autogluon_cloud
from airflow_autogluon_cloud.permissions import iam_policy

PACKAGE_DIR = str(Path(airflow_autogluon_cloud.__file__).resolve().parent)
# S3's API operations and its IAM actions have different names.
_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "DeleteObjects": "DeleteObject",
    "GetBucketLocation": "GetBucketLocation",
}
# The role the provider assumes is granted by the trust relationship, not by this policy.
_NOT_POLICY = {"sts"}


class PolicyGapError(AssertionError):
    """The provider made a request its generated IAM policy does not allow."""


@cache
def _allowed() -> tuple[str, ...]:
    actions: list[str] = []
    for statement in iam_policy("123456789012", "agc-test-bucket")["Statement"]:
        found = statement["Action"]
        actions += [found] if isinstance(found, str) else found
    return tuple(a.lower() for a in actions)


def iam_action(signing_name: str, operation: str) -> str:
    """The IAM action a request needs: ``sagemaker-runtime``'s calls sign as ``sagemaker``."""
    if signing_name == "s3":
        operation = _S3_ACTIONS.get(operation, operation)
    if signing_name == "monitoring":  # CloudWatch signs as "monitoring"; its IAM actions are "cloudwatch:"
        signing_name = "cloudwatch"
    return f"{signing_name}:{operation}"


def made_by_provider() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(PACKAGE_DIR):
            return True
        frame = frame.f_back
    return False


def check_allowed(service_model, operation: str) -> None:
    signing_name = service_model.signing_name or service_model.endpoint_prefix
    if signing_name in _NOT_POLICY or not made_by_provider():
        return
    action = iam_action(signing_name, operation)
    if not any(fnmatchcase(action.lower(), pattern) for pattern in _allowed()):
        raise PolicyGapError(
            f"The provider called {action}, which the IAM policy from permissions.iam_policy() does not allow: "
            "add it there (and to the list in docs/connections.md)."
        )
