"""The local model registry: SageMaker Model Registry's semantics, in the local state store.

A group is a ``model_package_group`` record; each version is a ``model_package`` record named
``<group>/<version>``. Versions count up from 1 per group, as on SageMaker; two processes that
register at once both get a version, because the insert of ``<group>/<n>`` is the lock (the
loser takes the next number).
"""

from __future__ import annotations

from typing import Any

from airflow_autogluon_cloud.backends.local.state import AlreadyExistsError, Record, StateStore
from airflow_autogluon_cloud.backends.specs import (
    APPROVAL_STATUSES,
    APPROVED,
    ChampionCheckedApproval,
    ModelVersion,
    ModelVersionSpec,
)
from airflow_autogluon_cloud.exceptions import InvalidParameterError, ResourceNotFoundError

GROUP = "model_package_group"
VERSION = "model_package"
_MAX_INSERT_RACES = 50


def _version_of(record: Record) -> ModelVersion:
    data: dict[str, Any] = record.data
    group, _, number = record.name.rpartition("/")
    return ModelVersion(
        group=group,
        version=int(number),
        model_uri=data["model_uri"],
        training_job=data.get("training_job"),
        framework_version=data.get("framework_version"),
        metrics=dict(data.get("metrics") or {}),
        dataset=data.get("dataset"),
        approval_status=record.status,
        status_set_by=data.get("status_set_by"),
        status_reason=data.get("status_reason"),
        created_at=record.created_at,
        arn=f"local:{record.name}",
        status_audit=data.get("status_audit"),
        description=data.get("description"),
        registered_by=data.get("registered_by"),
        usage=dict(data.get("usage") or {}),
    )


class LocalRegistry:
    """Model package groups and versions on this machine.

    :param store: the local backend's state store.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _records(self, group: str) -> list[Record]:
        prefix = f"{group}/"
        records = [r for r in self.store.list(VERSION) if r.name.startswith(prefix)]
        return sorted(records, key=lambda r: int(r.name[len(prefix) :]))

    def create(self, spec: ModelVersionSpec) -> ModelVersion:
        if spec.approval_status not in APPROVAL_STATUSES:
            raise InvalidParameterError("approval_status", spec.approval_status, f"use one of {APPROVAL_STATUSES}.")
        try:
            self.store.insert(GROUP, spec.group, "Completed", data={"description": spec.description})
        except AlreadyExistsError:
            pass
        data = {
            "model_uri": spec.model_uri,
            "training_job": spec.training_job,
            "framework_version": spec.framework_version,
            "metrics": dict(spec.metrics),
            "dataset": spec.dataset,
            "description": spec.description,
            "image_uri": spec.image_uri,
            "status_set_by": spec.registered_by,
            "registered_by": spec.registered_by,
            "status_reason": "registered",
            "usage": dict(spec.usage),
        }
        for _ in range(_MAX_INSERT_RACES):
            records = self._records(spec.group)
            number = int(records[-1].name.rpartition("/")[2]) + 1 if records else 1
            try:
                record = self.store.insert(VERSION, f"{spec.group}/{number}", spec.approval_status, data=data)
            except AlreadyExistsError:
                continue  # another process took this number; take the next
            return _version_of(record)
        raise RuntimeError(f"Could not allocate a version in model group {spec.group!r}")

    def describe(self, group: str, version: int) -> ModelVersion:
        record = self.store.get(VERSION, f"{group}/{int(version)}")
        if record is None:
            raise ResourceNotFoundError("Model version", f"{group}/{version}", "local")
        return _version_of(record)

    def versions(self, group: str, approval_status: str | None = None) -> list[ModelVersion]:
        return [_version_of(r) for r in self._records(group) if approval_status is None or r.status == approval_status]

    def groups(self) -> list[str]:
        return sorted(r.name for r in self.store.list(GROUP))

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
        name = f"{group}/{int(version)}"
        updates = {"status_set_by": set_by, "status_reason": reason, "status_audit": audit}
        if not self.store.update(VERSION, name, status=status, data_updates=updates):
            raise ResourceNotFoundError("Model version", name, "local")
        return self.describe(group, version)

    def approve_if_latest(
        self, group: str, version: int, set_by: str, reason: str, audit: dict[str, Any] | None, expected: int | None
    ) -> ChampionCheckedApproval:
        """Approve ``version`` if ``expected`` is still the latest approved: the check and the write
        are one transaction of the state database, so two gates cannot both pass on one champion."""
        name = f"{group}/{int(version)}"
        prefix = f"{group}/"
        with self.store.transaction() as tx:
            approved = [r for r in tx.list(VERSION, APPROVED) if r.name.startswith(prefix)]
            latest = max(approved, key=lambda r: int(r.name[len(prefix) :]), default=None)
            latest_number = int(latest.name[len(prefix) :]) if latest else None
            if latest_number != expected and latest_number != int(version):
                conflict = _version_of(latest) if latest else None
                return ChampionCheckedApproval(self.describe_in(tx, name), approved=False, conflict=conflict)
            updates = {"status_set_by": set_by, "status_reason": reason, "status_audit": audit}
            if not tx.update(VERSION, name, APPROVED, updates):
                raise ResourceNotFoundError("Model version", name, "local")
        return ChampionCheckedApproval(self.describe(group, version), approved=True)

    @staticmethod
    def describe_in(tx: Any, name: str) -> ModelVersion:
        found = [r for r in tx.list(VERSION) if r.name == name]
        if not found:
            raise ResourceNotFoundError("Model version", name, "local")
        return _version_of(found[0])
