"""The model registry: versions of a model in a group, their metrics, lineage and approval.

The backend keeps the versions (SageMaker Model Registry, or the local state store); this
service validates, makes registering idempotent, and resolves references such as "the group's
latest approved version" to a model URI when a task runs.

A reference is a model URI, or one of::

    {"registry": "churn", "version": "latest-approved"}     # or an int, or "3"
    "registry://churn/latest-approved"                       # the same, as one templatable string
    "registry://churn/3"
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.backends.base import Backend
from airflow_autogluon_cloud.backends.specs import (
    APPROVAL_STATUSES,
    APPROVED,
    PENDING_APPROVAL,
    REJECTED,
    ModelVersion,
    ModelVersionSpec,
)
from airflow_autogluon_cloud.exceptions import InvalidParameterError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.cost import usage as job_usage
from airflow_autogluon_cloud.services.gate import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MIN_SLICE_ROWS,
    GateDecision,
    GateOptions,
    decide,
    gate_audit,
)
from airflow_autogluon_cloud.services.models import ModelService

if TYPE_CHECKING:
    from airflow_autogluon_cloud.settings import ProviderSettings

LATEST_APPROVED = "latest-approved"
REFERENCE_SCHEME = "registry://"
_JOB_FROM_URI = re.compile(r"/([A-Za-z0-9][A-Za-z0-9-]{0,62})/output/model\.tar\.gz\Z")
#: SageMaker's limits, checked on both backends so a DAG that passes locally passes on SageMaker:
#: ``ModelPackageGroupDescription`` and ``ModelPackageDescription`` (the ``description``) take
#: 1,024 characters; the reason and who set an approval are stored as metadata values (256).
MAX_DESCRIPTION_CHARS = 1024
MAX_METADATA_CHARS = 256
__all__ = ["APPROVED", "LATEST_APPROVED", "PENDING_APPROVAL", "REJECTED", "RegistryService"]


def is_reference(value: Any) -> bool:
    """Whether ``value`` names a registry version rather than a model URI."""
    return (isinstance(value, dict) and "registry" in value) or (
        isinstance(value, str) and value.startswith(REFERENCE_SCHEME)
    )


def parse_reference(value: Any, parameter: str = "model_uri") -> tuple[str, int | None]:
    """``(group, version)`` of a reference; version ``None`` means the latest approved."""
    fix = (
        f'give {{"registry": "<group>", "version": "{LATEST_APPROVED}" or a number}} or "registry://<group>/<version>".'
    )
    group: Any
    version: Any
    if isinstance(value, str):
        group, _, version = value[len(REFERENCE_SCHEME) :].partition("/")
    elif isinstance(value, dict):
        group, version = value.get("registry"), value.get("version", LATEST_APPROVED)
    else:
        raise InvalidParameterError(parameter, value, fix)
    if not isinstance(group, str) or not naming.is_valid_name(group):
        raise InvalidParameterError(parameter, value, fix)
    if version in (LATEST_APPROVED, None, ""):
        return group, None
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidParameterError(parameter, value, fix) from None
    if number < 1:
        raise InvalidParameterError(parameter, value, "versions count from 1.")
    return group, number


def check_text(parameter: str, value: Any, limit: int) -> None:
    """Refuse registry text SageMaker would refuse: not a string, longer than ``limit``, or holding
    control or other invisible characters (its pattern allows letters, marks, spaces, symbols,
    numbers and punctuation only; no newlines or tabs)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidParameterError(parameter, value, "expected a string.")
    if len(value) > limit:
        raise InvalidParameterError(parameter, value, f"it has {len(value)} characters; SageMaker allows {limit}.")
    bad = next((ch for ch in value if unicodedata.category(ch).startswith("C")), None)
    if bad is not None:
        raise InvalidParameterError(
            parameter,
            value,
            f"it holds the control or invisible character {bad!r} (U+{ord(bad):04X}); SageMaker allows "
            "letters, digits, spaces, punctuation and symbols only (no newlines or tabs).",
        )


def clean_text(value: str, limit: int) -> str:
    """Text the provider composes (from a reviewer's name, say) made acceptable: control and
    invisible characters become spaces, and it is cut to ``limit``."""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def training_job_of(model_uri: str) -> str | None:
    """The training job in ``<output>/model/<job>/output/model.tar.gz`` (both backends' layout)."""
    match = _JOB_FROM_URI.search(model_uri)
    return match.group(1) if match else None


@dataclass
class RegistryService:
    """Register, look up, approve and resolve model versions.

    :param backend: where the registry lives.
    :param models: model artifacts (checks and training summaries).
    :param log: the task log.
    :param settings: the price table for a version's estimated cost (none: usage without cost).
    """

    backend: Backend
    models: ModelService
    log: TaskLog
    settings: ProviderSettings | None = None

    def training_usage(self, job: str) -> dict[str, Any]:
        """What training job ``job`` used (``services/cost.py``), without empty fields; ``{}`` when
        there is no such job (a model registered from elsewhere)."""
        if not naming.is_valid_name(job):  # the model URI stands in for the job: nothing to describe
            return {}
        try:
            desc = self.backend.describe_job(JobKind.TRAINING, job)
        except ResourceNotFoundError:
            self.log.info("No training job %s found; the version records no usage.", job)
            return {}
        prices = self.settings.instance_prices if self.settings is not None else {}
        return {key: value for key, value in job_usage(desc, prices).items() if value is not None}

    def register(
        self,
        *,
        group: str,
        model_uri: str,
        training_job: str | None = None,
        metrics: dict[str, Any] | None = None,
        dataset: str | None = None,
        description: str | None = None,
        framework_version: str | None = None,
        registered_by: str | None = None,
        approval_status: str = PENDING_APPROVAL,
    ) -> ModelVersion:
        """Register ``model_uri`` in ``group``, or return the version an earlier try registered.

        A version is keyed by (training job, model URI): registering the same pair again finds the
        existing version instead of adding one, so a retried task leaves one version.

        :param metrics: headline metrics, name -> number (e.g. from the evaluation on the holdout).
        :param dataset: what the metrics were measured on (e.g. the evaluation's data URI).
        """
        if not isinstance(group, str) or not naming.is_valid_name(group):
            raise InvalidParameterError("group", group, "use 1-63 letters, digits and hyphens (SageMaker's rule).")
        check_text("description", description, MAX_DESCRIPTION_CHARS)
        check_text("registered_by", registered_by, MAX_METADATA_CHARS)
        self.models.check_uri(model_uri)
        if approval_status not in APPROVAL_STATUSES:
            raise InvalidParameterError("approval_status", approval_status, f"use one of {APPROVAL_STATUSES}.")
        clean_metrics: dict[str, float] = {}
        for name, value in (metrics or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidParameterError(f"metrics[{name!r}]", value, "metrics are finite numbers.")
            clean_metrics[str(name)] = float(value)
        job = training_job or training_job_of(model_uri) or model_uri
        for existing in self.backend.list_model_versions(group):
            if existing.model_uri == model_uri and existing.training_job == job:
                self.log.info("%s is already %s version %d; reusing it.", model_uri, group, existing.version)
                return existing
        version = framework_version or self.models.summary(model_uri).get("autogluon_version")
        image = self.backend.resolve_image(
            "inference", framework_version=version, custom_image_uri=None, instance_type="ml.m5.xlarge"
        )
        spec = ModelVersionSpec(
            group=group,
            model_uri=model_uri,
            training_job=job,
            framework_version=image.framework_version,
            metrics=clean_metrics,
            dataset=dataset,
            description=description,
            image_uri=image.image_uri,
            approval_status=approval_status,
            registered_by=registered_by,
            usage=self.training_usage(job),
        )
        created = self.backend.create_model_version(spec)
        self.log.info("Registered %s as version %d of %s (%s)", model_uri, created.version, group, approval_status)
        return created

    def groups(self) -> list[str]:
        """The registry's group names, sorted."""
        return self.backend.list_model_groups()

    def get(self, group: str, version: int) -> ModelVersion:
        return self.backend.describe_model_version(group, int(version))

    def versions(self, group: str, approval_status: str | None = None) -> list[ModelVersion]:
        """The group's versions, oldest first; only those with ``approval_status`` if given."""
        if approval_status is not None and approval_status not in APPROVAL_STATUSES:
            raise InvalidParameterError("approval_status", approval_status, f"use one of {APPROVAL_STATUSES}.")
        return self.backend.list_model_versions(group, approval_status)

    def latest_approved(self, group: str) -> ModelVersion | None:
        """The newest version of ``group`` whose status is Approved (``None`` if there is none)."""
        approved = self.backend.list_model_versions(group, APPROVED)
        return max(approved, key=lambda v: v.version) if approved else None

    def set_approval(
        self,
        group: str,
        version: int,
        status: str,
        set_by: str,
        reason: str | None = None,
        audit: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Set a version's approval, recording who or what set it and why (and the gate's audit)."""
        if status not in APPROVAL_STATUSES:
            raise InvalidParameterError("status", status, f"use one of {APPROVAL_STATUSES}.")
        if not set_by:
            raise InvalidParameterError("set_by", set_by, "say who or what sets the approval.")
        check_text("set_by", set_by, MAX_METADATA_CHARS)
        check_text("reason", reason, MAX_METADATA_CHARS)
        updated = self.backend.update_model_approval(group, int(version), status, set_by, reason, audit)
        self.log.info("%s version %d is now %s (set by %s: %s)", group, updated.version, status, set_by, reason)
        return updated

    def rollback(self, group: str, set_by: str, reason: str = "rolled back") -> ModelVersion:
        """Reject the latest approved version, so the approved one before it is served again.

        :return: the version that is now the latest approved.
        """
        current = self.latest_approved(group)
        if current is None:
            raise InvalidParameterError("group", group, "no approved version to roll back from.")
        earlier = [v for v in self.versions(group, APPROVED) if v.version < current.version]
        if not earlier:
            raise InvalidParameterError(
                "group", group, f"version {current.version} is the only approved version; approve another first."
            )
        self.set_approval(group, current.version, REJECTED, set_by, reason)
        return max(earlier, key=lambda v: v.version)

    def resolve(self, reference: Any, parameter: str = "model_uri") -> tuple[str, ModelVersion | None]:
        """A model URI for ``reference`` (returned unchanged when it is a URI) and the version it names."""
        if not is_reference(reference):
            return reference, None
        group, number = parse_reference(reference, parameter)
        if number is None:
            found = self.latest_approved(group)
            if found is None:
                raise InvalidParameterError(parameter, reference, f"group {group!r} has no approved version yet.")
        else:
            try:
                found = self.get(group, number)
            except ResourceNotFoundError:
                raise InvalidParameterError(parameter, reference, f"group {group!r} has no version {number}.") from None
            if found.approval_status != APPROVED:
                self.log.warning("Using %s version %d, which is %s.", group, number, found.approval_status)
        self.log.info("Resolved %s to %s version %d: %s", reference, group, found.version, found.model_uri)
        return found.model_uri, found

    # the promotion gate ------------------------------------------------------------------------

    def promote(
        self,
        *,
        group: str,
        challenger_version: int,
        evaluation: dict[str, Any],
        set_by: str,
        challenger: str = "challenger",
        champion: str = "champion",
        metric: str | None = None,
        higher_is_better: bool | None = None,
        min_improvement: float = 0.0,
        review: dict[str, Any] | None = None,
        confidence: float | None = DEFAULT_CONFIDENCE,
        min_relative_improvement: float = 0.0,
        guardrails: dict[str, float] | None = None,
        min_rows: int = 0,
        slices: Any = None,
        min_slice_rows: int = DEFAULT_MIN_SLICE_ROWS,
    ) -> dict[str, Any]:
        """Approve the challenger if it beats the champion beyond the noise, else reject it.

        The rule (:mod:`~airflow_autogluon_cloud.services.gate`): on ``metric``, the lower bound of
        the improvement's ``confidence`` interval (paired bootstrap, from the evaluation job) must
        exceed ``min_improvement`` and ``min_relative_improvement`` of the champion's score; every
        guardrail must hold, the holdout must have ``min_rows`` rows, and no slice may be
        significantly worse. ``confidence=None`` compares point estimates instead. With no
        champion yet the challenger is approved. With ``review`` (an ``ApprovalOperator``'s
        result) a person must also have chosen "Approve".

        An approval is a compare-and-set: it is written only while the champion the evaluation
        compared against (or none) is still the group's latest approved version; otherwise the
        challenger is rejected with "champion changed since evaluation".

        :param evaluation: the evaluate operator's XCom, with both models scored on one dataset.
        :return: the decision, the scores, every rule checked and the latest approved version after it.
        """
        options = GateOptions.parse(
            confidence=confidence,
            min_improvement=min_improvement,
            min_relative_improvement=min_relative_improvement,
            guardrails=guardrails,
            min_rows=min_rows,
            slices=slices,
            min_slice_rows=min_slice_rows,
        )
        scores = (evaluation or {}).get("metrics") or {}
        if not isinstance(evaluation, dict) or evaluation.get("status") != "Completed" or challenger not in scores:
            raise InvalidParameterError(
                "evaluation", evaluation, f"pass a completed evaluation's XCom that scored {challenger!r}."
            )
        name = metric or evaluation.get("eval_metric")
        directions = evaluation.get("metric_directions") or {}
        if name not in scores[challenger] or scores[challenger][name] is None:
            raise InvalidParameterError("metric", name, f"the evaluation reported {sorted(scores[challenger])}.")
        direction = bool(directions.get(name, True)) if higher_is_better is None else bool(higher_is_better)
        version = self.get(group, challenger_version)
        scored_uri = (evaluation.get("model_uris") or {}).get(challenger)
        if scored_uri != version.model_uri:
            raise InvalidParameterError(
                "challenger_version",
                challenger_version,
                f"version is {version.model_uri}; the evaluation scored {scored_uri}.",
            )
        challenger_score = float(scores[challenger][name])
        champion_score = (scores.get(champion) or {}).get(name)
        expected = self._compared_champion(group, evaluation, champion)
        found: GateDecision | None = None
        if champion_score is None:
            passed, reason = True, f"no champion yet; {name} {challenger_score:.4f}"
        else:
            found = decide(
                evaluation=evaluation,
                challenger=challenger,
                champion=champion,
                metric=str(name),
                higher_is_better=direction,
                options=options,
            )
            passed, reason = found.passed, found.reason
        who = set_by
        if review is not None and passed:
            chosen = review.get("chosen_options") or []
            user = (review.get("responded_by_user") or {}).get("name") or "an unnamed reviewer"
            who = f"{set_by}; reviewed by {user}"
            if chosen != ["Approve"]:
                passed, reason = False, f"{reason}; but {user} chose {chosen}"
        # The registry keeps text within SageMaker's limits; the decision below keeps the whole reason.
        who = clean_text(who, MAX_METADATA_CHARS)
        audit = gate_audit(found, options, expected, evaluation)
        between: list[int] = []
        if passed:
            outcome = self.backend.approve_model_if_latest(
                group, version.version, who, clean_text(reason, MAX_METADATA_CHARS), audit["record"], expected
            )
            between = outcome.approved_between
            if not outcome.approved:
                passed = False
                if outcome.conflict is not None:
                    changed = f"version {outcome.conflict.version} was approved by {outcome.conflict.status_set_by}"
                else:
                    changed = f"no version is approved any more (version {expected} was, when evaluated)"
                reason = f"champion changed since evaluation: {changed}; {reason}"
                audit["record"]["champion_check"] = f"failed: {changed}"
            elif between:
                self.log.warning("%s versions %s were approved while version %d was", group, between, version.version)
            self.log.info("%s version %d is now %s (set by %s: %s)", group, version.version, "Approved", who, reason)
        if not passed:
            self.set_approval(
                group, version.version, REJECTED, who, clean_text(reason, MAX_METADATA_CHARS), audit["record"]
            )
        latest = self.latest_approved(group)
        main = found.metric if found else {}
        return {
            "decision": "approved" if passed else "rejected",
            "reason": reason,
            "group": group,
            "challenger_version": version.version,
            "champion_version": expected,
            "metric": name,
            "higher_is_better": direction,
            "challenger_score": challenger_score,
            "champion_score": champion_score,
            "improvement": main.get("improvement"),
            "min_improvement": options.min_improvement,
            "num_rows": evaluation.get("num_rows"),
            "data_uri": evaluation.get("data_uri"),
            "latest_approved_version": latest.version if latest else None,
            "set_by": who,
            # beside the keys above (kept as they were): the statistics and every rule checked
            "confidence": options.confidence,
            "improvement_interval": main.get("interval"),
            "p_value": main.get("p_value"),
            "test": main.get("test"),
            "rules": found.rules if found else [],
            "guardrails": found.guardrails if found else {},
            "slices": found.slices if found else [],
            "options": options.to_dict(),
            "approved_between": between,
        }

    def _compared_champion(self, group: str, evaluation: dict[str, Any], champion: str) -> int | None:
        """The group's version the evaluation compared against as ``champion`` (``None``: none)."""
        named = (evaluation.get("model_versions") or {}).get(champion) or {}
        if named.get("version") is not None and named.get("group", group) == group:
            return int(named["version"])
        uri = (evaluation.get("model_uris") or {}).get(champion)
        if uri is None:
            return None  # the evaluation had no champion (e.g. absent_models: none approved yet)
        holding = [v for v in self.versions(group) if v.model_uri == uri]
        approved = [v for v in holding if v.approval_status == APPROVED]
        if approved or holding:
            return max(approved or holding, key=lambda v: v.version).version
        latest = self.latest_approved(group)  # a champion from outside the group: no version to hold
        return latest.version if latest else None
