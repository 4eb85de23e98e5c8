"""Endpoints: deploy (create, or update without downtime), roll back, wait, delete, sweep.

A deploy is two steps with a wait between them, so an operator can defer in the middle:
:meth:`EndpointService.start_deploy` creates what is missing and returns a :class:`DeployPlan`;
:meth:`EndpointService.finish_deploy` checks the endpoint serves the new configuration, then
removes what it replaced (or rolls back what the deploy created). Names of the model and
configuration derive from the endpoint and the artifact, so a retried task finds what its
earlier try created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_autogluon_cloud import endpoint_options, naming, polling
from airflow_autogluon_cloud.backends.base import PROVIDER_TAG, Backend, EndpointConfigSpec, EndpointDescription
from airflow_autogluon_cloud.exceptions import (
    EndpointError,
    InvalidParameterError,
    JobTimeoutError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.kinds import ModelSummary
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.services.cost import endpoint_usage
from airflow_autogluon_cloud.services.models import ModelService
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.status import EndpointStatus

MODEL = "model"
ENDPOINT_CONFIG = "endpoint_config"
DEFAULT_INSTANCE_TYPE = "ml.m5.2xlarge"


@dataclass
class DeployPlan:
    """What a deploy is doing: the names involved, the action, and what it created or replaces.

    Travels from :meth:`EndpointService.start_deploy` to :meth:`~EndpointService.finish_deploy`,
    across a deferral too, as the plain dict of :meth:`to_dict`.
    """

    endpoint_name: str
    config_name: str
    model_name: str
    model_uri: str
    backend: str
    #: ``create``, ``recreate`` (a Failed endpoint replaced), ``update`` or ``reattach``.
    action: str = "create"
    #: Names of the model and configuration this deploy created (rolled back if it fails).
    created: list[str] = field(default_factory=list)
    #: The configuration the endpoint served before (removed once it serves the new one).
    replaced_config: str | None = None
    #: The scaling policy to register once the endpoint serves the new configuration.
    autoscaling: dict[str, Any] | None = None
    #: The policy the endpoint had before the update (removed for it; restored if none is given).
    previous_autoscaling: dict[str, Any] | None = None
    #: What the endpoint bills by the hour (``services/cost.py``): instances and, with prices, USD/hour.
    usage: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeployPlan:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EndpointService:
    """Real-time endpoints on one backend.

    :param backend: where endpoints run.
    :param models: registers the model behind a configuration.
    :param settings: validates the artifact location before anything is created.
    :param log: the task log.
    """

    backend: Backend
    models: ModelService
    settings: ProviderSettings
    log: TaskLog

    def served_summary(self, endpoint_name: str) -> ModelSummary:
        """The summary of the model ``endpoint_name`` serves (its kind decides how answers are counted)."""
        endpoint = self.backend.describe_endpoint(endpoint_name)
        config = self.backend.describe_endpoint_config(str(endpoint.config_name))
        model = self.backend.describe_model(config.model_names[0])
        return ModelSummary.from_dict(self.models.summary(str(model.model_data_uri)))

    def describe(self, endpoint_name: str) -> EndpointDescription:
        return self.backend.describe_endpoint(endpoint_name)

    def invocations(self, name: str, since: float) -> int | None:
        """Requests endpoint ``name`` answered since ``since`` (epoch seconds), as the idle sweep
        counts them: SageMaker's CloudWatch ``Invocations`` sum (whole minutes), or the local
        endpoint's own counter; ``None`` when unknown."""
        return self.backend.endpoint_invocations(name, since)

    def list_endpoints(self) -> list[EndpointDescription]:
        """Every endpoint this provider created (found by its tag)."""
        return self.backend.list_endpoints()

    def serving(self, endpoint: EndpointDescription) -> dict[str, Any]:
        """What ``endpoint`` serves (read-only): the model's URI, the instance count or serverless."""
        if not endpoint.config_name:  # a listing (SageMaker's ListEndpoints) leaves the config out
            endpoint = self.describe(endpoint.name)
        if not endpoint.config_name:
            return {"model_uri": None, "instance_count": None, "serverless": False}
        config = self.backend.describe_endpoint_config(endpoint.config_name)
        model_uri = None
        if config.model_names:
            try:
                model_uri = self.backend.describe_model(config.model_names[0]).model_data_uri
            except ResourceNotFoundError:
                pass  # deleted meanwhile
        return {"model_uri": model_uri, "instance_count": config.instance_count, "serverless": config.serverless}

    def start_deploy(
        self,
        *,
        endpoint_name: str,
        model_uri: str,
        instance_type: str | None = None,
        instance_count: int | None = None,
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        volume_size: int | None = None,
        tags: dict[str, str] | None = None,
        serverless_config: dict[str, Any] | str | None = None,
        autoscaling: dict[str, Any] | str | None = None,
        data_capture: dict[str, Any] | str | None = None,
    ) -> DeployPlan:
        """Create the endpoint, or move an existing one to ``model_uri`` without downtime.

        If a step fails, the pieces this call created are removed again.

        :param instance_type: default ``ml.m5.2xlarge`` (not with ``serverless_config``).
        :param instance_count: default 1 (not with ``serverless_config``).
        :param serverless_config: a serverless endpoint instead of instances
            (:func:`~airflow_autogluon_cloud.endpoint_options.serverless`). Switching an endpoint
            between instances and serverless is an update like any other: a new configuration.
        :param autoscaling: a target-tracking policy for the instance count
            (:func:`~airflow_autogluon_cloud.endpoint_options.autoscaling`); ``instance_count``
            defaults to its ``min_capacity``. It is registered once the endpoint is in service, and
            removed before an update and registered again after it. Backends that do not scale
            endpoints (local) keep the initial count.
        :param data_capture: ``{"sampling_percentage": 20, "destination": ...}``: a sample of requests
            and answers kept in SageMaker's capture format (``hook.monitoring.check_capture`` checks them).
        """
        if not naming.is_valid_name(endpoint_name):
            raise InvalidParameterError(
                "endpoint_name", endpoint_name, "use 1-63 letters, digits and hyphens (SageMaker's rule)."
            )
        serverless = endpoint_options.serverless(serverless_config)
        capture = endpoint_options.data_capture(data_capture, requires_s3=self.backend.requires_s3_uris)
        if serverless and (instance_type is not None or instance_count is not None or volume_size is not None):
            raise InvalidParameterError(
                "serverless_config",
                serverless_config,
                "a serverless endpoint has no instances: drop instance_type, instance_count and volume_size, "
                "or drop serverless_config.",
            )
        policy = endpoint_options.autoscaling(autoscaling)
        if policy and serverless:
            raise InvalidParameterError(
                "autoscaling", autoscaling, "serverless endpoints scale by themselves: drop autoscaling."
            )
        instance_type = instance_type or DEFAULT_INSTANCE_TYPE
        if instance_count is None:
            instance_count = int(policy["min_capacity"]) if policy else 1
        if not isinstance(instance_count, int) or instance_count < 1:
            raise InvalidParameterError("instance_count", instance_count, "expected an integer >= 1.")
        bound = self.backend.max_instance_count
        if bound is not None and instance_count > bound[0]:
            raise InvalidParameterError("instance_count", instance_count, f"{bound[1]}: use at most {bound[0]}.")
        if policy and not policy["min_capacity"] <= instance_count <= policy["max_capacity"]:
            raise InvalidParameterError(
                "instance_count", instance_count, "with autoscaling, it must be between min_capacity and max_capacity."
            )
        self.settings.cloud_output_path  # noqa: B018 - validates the output location before anything else
        self.models.check_uri(model_uri)
        if serverless:  # its own configuration (and model), so a switch either way is an update
            parts = (model_uri, "serverless", sorted(serverless.items()), framework_version, custom_image_uri)
            digest = naming.short_hash(*parts, length=8)
        else:  # the digest an instance-based deploy always had: an existing endpoint is reattached
            digest = naming.short_hash(model_uri, instance_type, instance_count, framework_version, custom_image_uri, 8)
        if capture:  # its own configuration; without capture the digest stays what it always was
            digest = naming.short_hash(digest, sorted(capture.items()), length=8)
        plan = DeployPlan(
            endpoint_name=endpoint_name,
            config_name=naming.derived_name(endpoint_name, f"c-{digest}"),
            model_name=naming.derived_name(endpoint_name, f"m-{digest}"),
            model_uri=model_uri,
            backend=self.backend.name,
            autoscaling=policy,
            usage=endpoint_usage(
                "serverless" if serverless else instance_type, instance_count, self.settings.instance_prices
            ),
        )
        if policy and not self.backend.scales_endpoints:
            self.log.info(
                "The %s backend does not autoscale endpoints: %s keeps %d instance(s)",
                self.backend.name,
                endpoint_name,
                instance_count,
            )
        all_tags = {PROVIDER_TAG: "endpoint", **(tags or {})}
        try:
            if self.models.create(
                plan.model_name,
                model_uri,
                instance_type=instance_type,
                framework_version=framework_version,
                custom_image_uri=custom_image_uri,
                tags=tags,
            ):
                plan.created.append(plan.model_name)
            try:
                self.backend.describe_endpoint_config(plan.config_name)
            except ResourceNotFoundError:
                self.backend.create_endpoint_config(
                    EndpointConfigSpec(
                        name=plan.config_name,
                        model_name=plan.model_name,
                        instance_type=instance_type,
                        instance_count=instance_count,
                        volume_size=volume_size,
                        tags=all_tags,
                        serverless=serverless,
                        data_capture=capture,
                    )
                )
                plan.created.append(plan.config_name)
            self._create_or_update(plan, all_tags)
            return plan
        except Exception:
            if plan.previous_autoscaling:  # removed for an update that did not happen
                self.backend.put_autoscaling(endpoint_name, plan.previous_autoscaling)
            self._rollback(plan)
            raise

    def _create_or_update(self, plan: DeployPlan, tags: dict[str, str]) -> None:
        name, config = plan.endpoint_name, plan.config_name
        try:
            current = self.backend.describe_endpoint(name)
        except ResourceNotFoundError:
            self.log.info("Creating endpoint %s with config %s", name, config)
            self.backend.create_endpoint(name, config, tags)
            plan.action = "create"
            return
        if current.status == EndpointStatus.FAILED:
            self.log.warning("Endpoint %s is Failed (%s); replacing it.", name, current.failure_reason)
            self.backend.delete_autoscaling(name)
            self.backend.delete_endpoint(name)
            self._wait_gone(name)
            self.backend.create_endpoint(name, config, tags)
            plan.action, plan.replaced_config = "recreate", current.config_name
        elif current.config_name == config:
            self.log.info("Endpoint %s already uses config %s (an earlier try); waiting for it.", name, config)
            plan.action = "reattach"
        else:
            if not current.status.is_terminal:
                self.wait(name, check_interval=10)
            # An autoscaled variant cannot take every update (a new instance type fails): remove the
            # scaling for the update and register it again once the endpoint serves the new config.
            plan.previous_autoscaling = self.backend.describe_autoscaling(name)
            if plan.previous_autoscaling:
                self.log.info("Removing the autoscaling of endpoint %s for the update", name)
                self.backend.delete_autoscaling(name)
            self.log.info("Updating endpoint %s from config %s to %s", name, current.config_name, config)
            self.backend.update_endpoint(name, config)
            plan.action, plan.replaced_config = "update", current.config_name

    def finish_deploy(self, plan: DeployPlan) -> dict[str, Any]:
        """After waiting: confirm the endpoint serves the new config, then remove what it replaced.

        On failure the new config and model are rolled back and :class:`EndpointError` is raised.
        """
        name = plan.endpoint_name
        desc = self.backend.describe_endpoint(name)
        if desc.status != EndpointStatus.IN_SERVICE or desc.config_name != plan.config_name:
            reason = desc.failure_reason or f"status {desc.status.value}, serving config {desc.config_name}"
            if plan.action in ("create", "recreate") and desc.status == EndpointStatus.FAILED:
                self.backend.delete_endpoint(name)
            elif plan.previous_autoscaling and desc.config_name != plan.config_name:
                self.backend.put_autoscaling(name, plan.previous_autoscaling)  # it serves the old config still
            self._rollback(plan)
            raise EndpointError(name, f"deploying {plan.model_uri} failed: {reason}", desc.status.value)
        scaling = plan.autoscaling or plan.previous_autoscaling
        if scaling and self.backend.scales_endpoints:
            self.log.info("Autoscaling endpoint %s: %s", name, scaling)
            self.backend.put_autoscaling(name, scaling)
        if plan.replaced_config and plan.replaced_config != plan.config_name:
            self.delete_config_and_models(plan.replaced_config, owner=name)
        return {
            "endpoint_name": name,
            "config_name": plan.config_name,
            "model_name": plan.model_name,
            "model_uri": plan.model_uri,
            "backend": self.backend.name,
            "action": plan.action,
            "url": desc.url,
            "usage": plan.usage,
        }

    def _rollback(self, plan: DeployPlan) -> None:
        """Delete what this deploy created: the configuration first, then the model."""
        for kind, name in ((ENDPOINT_CONFIG, plan.config_name), (MODEL, plan.model_name)):
            if name not in plan.created:
                continue
            self.log.warning("Rolling back: deleting %s %s", kind.replace("_", " "), name)
            try:
                if kind == ENDPOINT_CONFIG:
                    self.backend.delete_endpoint_config(name)
                else:
                    self.backend.delete_model(name)
            except Exception as err:
                self.log.error("Could not delete %s %s during rollback: %s", kind, name, err)

    def wait(
        self,
        endpoint_name: str,
        *,
        check_interval: float = 30,
        max_check_interval: float | None = None,
        timeout: float = 3 * 3600,
        sleep: Callable[[float], None] = time.sleep,
    ) -> EndpointDescription:
        """Wait until the endpoint leaves Creating/Updating; return its description."""
        interval = float(check_interval)
        ceiling = polling.max_interval(check_interval, max_check_interval)
        deadline = time.monotonic() + timeout
        while True:
            desc = self.backend.describe_endpoint(endpoint_name)
            if desc.status.is_terminal:
                return desc
            if time.monotonic() > deadline:
                raise JobTimeoutError("Endpoint", endpoint_name, desc.status.value, timeout)
            self.log.info("Endpoint %s is %s; next check in %.0fs", endpoint_name, desc.status.value, interval)
            sleep(interval)
            interval = polling.next_interval(interval, ceiling)

    def _wait_gone(self, endpoint_name: str, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.backend.describe_endpoint(endpoint_name)
            except ResourceNotFoundError:
                return
            time.sleep(5)

    # removal ---------------------------------------------------------------------------------

    def delete_config_and_models(self, config_name: str, owner: str | None = None) -> None:
        """Delete an endpoint configuration and its models (only ones named after ``owner``, if given)."""
        try:
            config = self.backend.describe_endpoint_config(config_name)
        except ResourceNotFoundError:
            return
        if owner and not config_name.startswith(owner[:40]):
            self.log.info("Leaving config %s in place: it was not created for endpoint %s.", config_name, owner)
            return
        self.log.info("Deleting endpoint config %s and models %s", config_name, ", ".join(config.model_names))
        self.backend.delete_endpoint_config(config_name)
        for model in config.model_names:
            self.backend.delete_model(model)

    def delete(self, endpoint_name: str) -> dict[str, Any]:
        """Delete an endpoint, its configuration and its models. Absent resources are not an error."""
        try:
            desc = self.backend.describe_endpoint(endpoint_name)
        except ResourceNotFoundError:
            self.log.info("Endpoint %s does not exist; nothing to delete.", endpoint_name)
            return {"endpoint_name": endpoint_name, "deleted": False, "config_name": None}
        self.log.info("Deleting endpoint %s (config %s)", endpoint_name, desc.config_name)
        if self.backend.delete_autoscaling(endpoint_name):  # deregistered before the endpoint goes
            self.log.info("Deregistered the autoscaling of endpoint %s", endpoint_name)
        self.backend.delete_endpoint(endpoint_name)
        if desc.config_name:
            self.delete_config_and_models(desc.config_name)
        return {"endpoint_name": endpoint_name, "deleted": True, "config_name": desc.config_name}

    def sweep(
        self,
        *,
        max_age_seconds: float | None = None,
        keep: list[str] | None = None,
        dry_run: bool = True,
        idle_for: float | None = None,
    ) -> list[dict[str, Any]]:
        """Delete endpoints created by this provider (by tag) older than ``max_age_seconds``, not in
        ``keep``, or (``idle_for`` seconds) up at least that long with no invocation in that time.

        :param dry_run: only report what would be deleted.
        :param idle_for: SageMaker counts invocations with CloudWatch's ``Invocations`` metric; the
            local backend asks the endpoint's own counter. An endpoint whose count is unknown is kept.
        :return: one entry per matching endpoint: name, age, reason, and whether it was deleted.
        """
        keep_set = set(keep or [])
        now = time.time()
        report = []
        for endpoint in self.backend.list_endpoints():
            if PROVIDER_TAG not in endpoint.tags:
                continue
            age = now - endpoint.created_at if endpoint.created_at else 0.0
            reasons = []
            if keep is not None and endpoint.name not in keep_set:
                reasons.append("not in the allow-list")
            if max_age_seconds is not None and age > max_age_seconds:
                reasons.append(f"older than {max_age_seconds:.0f}s")
            if idle_for is not None and age > idle_for and self.invocations(endpoint.name, now - idle_for) == 0:
                reasons.append(f"no invocations in {idle_for:.0f}s")
            if not reasons:
                continue
            entry = {"endpoint_name": endpoint.name, "age_seconds": round(age, 1), "reason": " and ".join(reasons)}
            if dry_run:
                self.log.info("Dry run: would delete endpoint %s (%s)", endpoint.name, entry["reason"])
                entry["deleted"] = False
            else:
                entry["deleted"] = self.delete(endpoint.name)["deleted"]
            report.append(entry)
        return report
