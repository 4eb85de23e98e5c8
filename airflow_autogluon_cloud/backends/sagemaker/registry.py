"""The SageMaker Model Registry behind the provider's registry: model package groups and versions.

A group is a model package group; a version is a versioned model package with an
``InferenceSpecification`` (the inference image, the ``model.tar.gz`` and the serving
environment, so ``CreateModel`` can name the package), its approval in ``ModelApprovalStatus``,
and the lineage and headline metrics as ``CustomerMetadataProperties`` (short strings, at most 50
entries of 256 characters). Who set the approval is written both to ``ApprovalDescription`` and
to the metadata, which is what this module reads back.

Every ``UpdateModelPackage`` sends the status, the description and the whole metadata map
together: AWS merges the map, moto replaces every field it handles, and both end up the same.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.sagemaker.api import SageMakerApi, epoch, error_code, error_message, tag_list
from airflow_autogluon_cloud.backends.specs import (
    APPROVAL_STATUSES,
    APPROVED,
    PROVIDER_TAG,
    ChampionCheckedApproval,
    ModelVersion,
    ModelVersionSpec,
)
from airflow_autogluon_cloud.exceptions import InvalidParameterError, ResourceNotFoundError

#: ``CustomerMetadataProperties`` keys (the pattern allows letters, digits and ``_.:/=+-@``).
META_TRAINING_JOB = "ag:training_job"
META_FRAMEWORK_VERSION = "ag:framework_version"
META_DATASET = "ag:dataset"
META_SET_BY = "ag:status_set_by"
META_REGISTERED_BY = "ag:registered_by"
META_REASON = "ag:status_reason"
META_METRIC_PREFIX = "ag:metric:"
#: The training job's usage and estimated cost, one entry per field (``ag:usage:billable_seconds``).
META_USAGE_PREFIX = "ag:usage:"
#: The gate's audit, one entry per rule (``ag:gate:<rule>``), each a short "key=value ..." line.
META_GATE_PREFIX = "ag:gate:"
MAX_METADATA_VALUE = 256
MAX_METADATA_ENTRIES = 50
#: ``ModelPackageDescription``, ``ModelPackageGroupDescription`` and ``ApprovalDescription``.
MAX_DESCRIPTION = 1024
#: Content types the serving script answers (serve.py), declared on every version.
CONTENT_TYPES = ["text/csv", "application/json", "application/x-parquet"]
RESPONSE_TYPES = ["application/json", "text/csv"]


#: ``CustomerMetadataProperties`` values allow letters, digits, spaces and ``_.:/=+-@`` only.
_METADATA_UNSAFE = re.compile(r"[^\w .:/=+\-@]")
_METADATA_SPELLED = str.maketrans({"%": " pct", ";": " /", ",": " ", "[": "", "]": "", "(": "", ")": ""})


def _metadata(value: str) -> str:
    """``value`` as a metadata value SageMaker accepts: brackets and commas dropped, the rest spaced."""
    cleaned = _METADATA_UNSAFE.sub(" ", str(value).translate(_METADATA_SPELLED))
    return _clip(" ".join(cleaned.split()) or "-")


def _clip(value: str, limit: int = MAX_METADATA_VALUE) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _usage_value(value: str) -> Any:
    """A usage field read back: counts as ints, seconds and dollars as floats, the instance type as text."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def client_token(spec: ModelVersionSpec) -> str:
    """A stable ``ClientToken`` (at most 36 of ``[a-zA-Z0-9-]``): a retried call names the same version."""
    return "agc-" + naming.short_hash(f"{spec.group}|{spec.training_job}|{spec.model_uri}", length=32)


class SageMakerRegistry:
    """Model package groups and versions through boto3.

    :param api: the SageMaker backend's calls.
    :param serving_environment: the container environment a version's model runs with.
    """

    def __init__(self, api: SageMakerApi, serving_environment: dict[str, str]) -> None:
        self.api = api
        self.serving_environment = serving_environment

    def ensure_group(self, group: str, description: str | None) -> None:
        from botocore.exceptions import ClientError

        try:
            self.api.call("describe_model_package_group", ModelPackageGroupName=group)
            return
        except ClientError as err:
            if error_code(err) not in ("ValidationException", "ResourceNotFound"):
                raise
        try:
            self.api.call(
                "create_model_package_group",
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=_clip(
                    description or f"AutoGluon models registered by {PROVIDER_TAG}", MAX_DESCRIPTION
                ),
                Tags=tag_list({PROVIDER_TAG: "model-package-group"}),
            )
        except ClientError as err:  # created meanwhile by another task
            if not error_message(err).startswith("Model Package Group already exists"):
                raise

    def create(self, spec: ModelVersionSpec) -> ModelVersion:
        if not spec.image_uri:
            raise InvalidParameterError("framework_version", None, "no inference image for the model version.")
        self.ensure_group(spec.group, spec.description)
        metadata = {META_TRAINING_JOB: spec.training_job, META_REASON: "registered"}
        if spec.framework_version:
            metadata[META_FRAMEWORK_VERSION] = spec.framework_version
        if spec.dataset:
            metadata[META_DATASET] = _metadata(spec.dataset)
        if spec.registered_by:
            metadata[META_SET_BY] = metadata[META_REGISTERED_BY] = _metadata(spec.registered_by)
        for metric, value in sorted(spec.metrics.items()):
            metadata[f"{META_METRIC_PREFIX}{metric}"] = repr(float(value))
        for key, value in sorted(spec.usage.items()):
            if value is not None:
                metadata[f"{META_USAGE_PREFIX}{key}"] = _metadata(str(value))
        request: dict[str, Any] = {
            "ModelPackageGroupName": spec.group,
            "ModelPackageDescription": _clip(
                spec.description or f"{spec.training_job}: {spec.model_uri}", MAX_DESCRIPTION
            ),
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": spec.image_uri,
                        "ModelDataUrl": spec.model_uri,
                        "Environment": dict(self.serving_environment),
                    }
                ],
                "SupportedContentTypes": list(CONTENT_TYPES),
                "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
            },
            "ModelApprovalStatus": spec.approval_status,
            "CustomerMetadataProperties": metadata,
            "ClientToken": client_token(spec),
        }
        arn = self.api.call("create_model_package", **request)["ModelPackageArn"]
        return self._describe_arn(arn)

    def _describe_arn(self, arn: str) -> ModelVersion:
        desc = self.api.call("describe_model_package", ModelPackageName=arn)
        meta: dict[str, str] = desc.get("CustomerMetadataProperties") or {}
        containers = desc.get("InferenceSpecification", {}).get("Containers") or [{}]
        return ModelVersion(
            group=desc.get("ModelPackageGroupName") or arn.rsplit("/", 2)[-2],
            version=int(desc["ModelPackageVersion"]),
            model_uri=containers[0].get("ModelDataUrl", ""),
            training_job=meta.get(META_TRAINING_JOB),
            framework_version=meta.get(META_FRAMEWORK_VERSION),
            metrics={
                key[len(META_METRIC_PREFIX) :]: float(value)
                for key, value in meta.items()
                if key.startswith(META_METRIC_PREFIX)
            },
            dataset=meta.get(META_DATASET),
            approval_status=desc.get("ModelApprovalStatus") or "PendingManualApproval",
            status_set_by=meta.get(META_SET_BY),
            status_reason=meta.get(META_REASON),
            created_at=epoch(desc.get("CreationTime")),
            arn=arn,
            status_audit={
                key[len(META_GATE_PREFIX) :]: value for key, value in meta.items() if key.startswith(META_GATE_PREFIX)
            }
            or None,
            description=desc.get("ModelPackageDescription"),
            registered_by=meta.get(META_REGISTERED_BY),
            usage={
                key[len(META_USAGE_PREFIX) :]: _usage_value(value)
                for key, value in meta.items()
                if key.startswith(META_USAGE_PREFIX)
            },
        )

    def _summaries(self, group: str, approval_status: str | None) -> list[dict[str, Any]]:
        """``ListModelPackages`` for the group's versions, oldest first, every page."""
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Ascending",
            "MaxResults": 100,
        }
        if approval_status:
            params["ModelApprovalStatus"] = approval_status
        summaries: list[dict[str, Any]] = []
        while True:
            try:
                page = self.api.call("list_model_packages", **params)
            except ClientError as err:
                if error_code(err) == "ValidationException":  # the group does not exist
                    return []
                raise
            summaries.extend(page.get("ModelPackageSummaryList", []))
            if not page.get("NextToken"):
                return sorted(summaries, key=lambda s: int(s.get("ModelPackageVersion") or 0))
            params["NextToken"] = page["NextToken"]

    def groups(self) -> list[str]:
        """Every model package group (``ListModelPackageGroups``, every page)."""
        params: dict[str, Any] = {"MaxResults": 100}
        names: list[str] = []
        while True:
            page = self.api.call("list_model_package_groups", **params)
            names.extend(g["ModelPackageGroupName"] for g in page.get("ModelPackageGroupSummaryList", []))
            if not page.get("NextToken"):
                return sorted(names)
            params["NextToken"] = page["NextToken"]

    def versions(self, group: str, approval_status: str | None = None) -> list[ModelVersion]:
        return [self._describe_arn(s["ModelPackageArn"]) for s in self._summaries(group, approval_status)]

    def _arn(self, group: str, version: int) -> str:
        for summary in self._summaries(group, None):
            if int(summary.get("ModelPackageVersion") or 0) == int(version):
                return str(summary["ModelPackageArn"])
        raise ResourceNotFoundError("Model version", f"{group}/{version}", "sagemaker")

    def describe(self, group: str, version: int) -> ModelVersion:
        return self._describe_arn(self._arn(group, version))

    def update_approval(
        self,
        group: str,
        version: int,
        status: str,
        set_by: str,
        reason: str | None,
        audit: dict[str, Any] | None = None,
    ) -> ModelVersion:
        if status not in APPROVAL_STATUSES:
            raise InvalidParameterError("status", status, f"use one of {APPROVAL_STATUSES}.")
        arn = self._arn(group, version)
        current = self.api.call("describe_model_package", ModelPackageName=arn)
        metadata = dict(current.get("CustomerMetadataProperties") or {})
        metadata[META_SET_BY] = _metadata(set_by)
        metadata[META_REASON] = _metadata(reason or status)
        for key, value in (audit or {}).items():
            if len(metadata) >= MAX_METADATA_ENTRIES:
                break  # SageMaker keeps at most 50 entries; the rest is in the task's XCom
            metadata[f"{META_GATE_PREFIX}{key}"] = _metadata(str(value))
        self.api.call(
            "update_model_package",
            ModelPackageArn=arn,
            ModelApprovalStatus=status,
            ApprovalDescription=_clip(f"{status} by {set_by}: {reason or 'no reason given'}", MAX_DESCRIPTION),
            CustomerMetadataProperties=metadata,
        )
        return self._describe_arn(arn)

    def _latest_approved(self, group: str) -> tuple[ModelVersion | None, set[int]]:
        summaries = self._summaries(group, APPROVED)
        numbers = {int(s.get("ModelPackageVersion") or 0) for s in summaries}
        if not summaries:
            return None, numbers
        return self._describe_arn(str(summaries[-1]["ModelPackageArn"])), numbers

    def approve_if_latest(
        self, group: str, version: int, set_by: str, reason: str, audit: dict[str, Any] | None, expected: int | None
    ) -> ChampionCheckedApproval:
        """SageMaker has no compare-and-set: re-read the latest approved version just before
        ``UpdateModelPackage`` and again after, and report any version approved in between. The
        window that remains is between that read and the update (two API calls)."""
        latest, before = self._latest_approved(group)
        if (latest is not None and latest.version not in (expected, int(version))) or (
            latest is None and expected is not None
        ):
            return ChampionCheckedApproval(self.describe(group, version), approved=False, conflict=latest)
        updated = self.update_approval(group, version, APPROVED, set_by, reason, audit)
        _, after = self._latest_approved(group)
        between = sorted(v for v in after - before if v != int(version))
        return ChampionCheckedApproval(updated, approved=True, approved_between=between)
