"""AGDeployOperator: put a trained model behind a real-time endpoint, creating or updating it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import naming
from airflow_autogluon_cloud.exceptions import EndpointError, JobTimeoutError, TriggerEventError
from airflow_autogluon_cloud.kinds import ENDPOINT
from airflow_autogluon_cloud.links.autogluon_cloud import AGEndpointLink
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def model_uri_from(value: Any) -> tuple[Any, str | None]:
    """Accept a ``model.tar.gz`` URI or the fit task's XCom dict; return (uri, framework version)."""
    if isinstance(value, dict) and "registry" not in value:
        return value.get("model_artifact_uri"), value.get("framework_version")
    return value, None


def resolve_model(hook: Any, value: Any) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(model URI, AutoGluon version, registry version used) for a URI, a fit XCom or a registry
    reference (``{"registry": "churn", "version": "latest-approved"}``, ``"registry://churn/3"``),
    resolved now, when the task runs."""
    uri, framework_version = model_uri_from(value)
    uri, registered = hook.registry.resolve(uri)
    if registered is None:
        return uri, framework_version, None
    used = {
        "group": registered.group,
        "version": registered.version,
        "approval_status": registered.approval_status,
        "model_uri": registered.model_uri,
    }
    return uri, framework_version or registered.framework_version, used


def with_model_version(result: dict[str, Any], model_version: dict[str, Any] | None) -> dict[str, Any]:
    """The XCom, with the registry version it used when the model came from the registry."""
    return {**result, "model_version": model_version} if model_version is not None else result


class AGDeployOperator(AutoGluonCloudBaseOperator):
    """Deploy a model to an endpoint: model, endpoint config and endpoint, all tagged.

    With a stable ``endpoint_name`` that already exists (scheduled retraining), the endpoint is
    moved to the new model without downtime: a new config, ``UpdateEndpoint``, wait until in
    service. Pieces created by a failed deploy are rolled back; the config and models the
    endpoint used before are removed once it serves the new one.

    XCom: ``endpoint_name``, ``config_name``, ``model_name``, ``model_uri``, ``backend``,
    ``action`` (create, update, reattach, recreate) and ``url`` (local backend).

    :param model_uri: a ``model.tar.gz`` URI, the fit task's XCom dict (``fit.output``), or a registry
        reference (``{"registry": "churn", "version": "latest-approved"}`` or a version number;
        ``"registry://churn/latest-approved"``), resolved when the task runs; the version used is
        in the XCom as ``model_version``. (templated)
    :param endpoint_name: the endpoint; default a stable name per DAG and task, so every run updates
        the same endpoint. (templated)
    :param instance_type: SageMaker instance type; default ``ml.m5.2xlarge``. (templated)
    :param instance_count: instances behind the endpoint (local: server processes); default 1.
    :param serverless_config: a serverless endpoint instead of instances: ``memory_size_in_mb``
        (1024-6144, steps of 1024), ``max_concurrency`` (1-200) and, local backend only,
        ``idle_seconds``. Not together with ``instance_type``/``instance_count``. (templated)
    :param autoscaling: scale the instance count with Application Auto Scaling: ``min_capacity``,
        ``max_capacity``, ``target_invocations_per_instance`` (per minute), optional
        ``scale_in_cooldown``/``scale_out_cooldown`` (seconds, default 300). ``instance_count``
        defaults to ``min_capacity``. The local backend keeps the initial count. (templated)
    :param data_capture: keep a sample of requests and answers in SageMaker's capture format:
        ``{"sampling_percentage": 20, "destination": "s3://..."}`` (SageMaker's ``DataCaptureConfig``;
        locally a directory the endpoint appends JSON lines to). (templated)
    :param framework_version: AutoGluon inference image version; default the model's. (templated)
    :param custom_image_uri: inference image to use instead of the AutoGluon container. (templated)
    :param volume_size: storage per instance in GB (not for ml.p*/ml.g* instances).
    :param wait_for_completion: wait until the endpoint is in service.
    :param tags: extra tags. (templated)
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "model_uri",
        "endpoint_name",
        "instance_type",
        "framework_version",
        "custom_image_uri",
        "tags",
        "serverless_config",
        "autoscaling",
        "data_capture",
    )
    operator_extra_links = (AGEndpointLink(),)

    def __init__(
        self,
        *,
        model_uri: Any,
        endpoint_name: str | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
        framework_version: str | None = None,
        custom_image_uri: str | None = None,
        volume_size: int | None = None,
        wait_for_completion: bool = True,
        tags: dict[str, str] | None = None,
        serverless_config: dict[str, Any] | str | None = None,
        autoscaling: dict[str, Any] | str | None = None,
        data_capture: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_uri = model_uri
        self.endpoint_name = endpoint_name
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.framework_version = framework_version
        self.custom_image_uri = custom_image_uri
        self.volume_size = volume_size
        self.wait_for_completion = wait_for_completion
        self.tags = tags
        self.serverless_config = serverless_config
        self.autoscaling = autoscaling
        self.data_capture = data_capture

    def execute(self, context: Context) -> dict[str, Any]:
        uri, version, model_version = resolve_model(self.hook, self.model_uri)
        ti = context["ti"]
        name = self.endpoint_name or naming.deterministic_name("ep", ti.dag_id, ti.task_id, "stable")
        plan = self.hook.start_deploy(
            endpoint_name=name,
            model_uri=uri,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            framework_version=self.framework_version or version,
            custom_image_uri=self.custom_image_uri,
            volume_size=self.volume_size,
            tags=self.tags,
            serverless_config=self.serverless_config,
            autoscaling=self.autoscaling,
            data_capture=self.data_capture,
        )
        AGEndpointLink.persist(context, self.hook.console_url(ENDPOINT, name))
        if not self.wait_for_completion:
            keys = ("endpoint_name", "config_name", "model_name", "model_uri", "backend", "action")
            return with_model_version({k: plan[k] for k in keys}, model_version)
        if self.deferrable:
            if not self.hook.describe_endpoint(name).status.is_terminal:
                self.defer_to_endpoint(
                    name,
                    poll_interval=self.check_interval,
                    max_poll_interval=self.max_check_interval,
                    kwargs={"plan": plan, "model_version": model_version},
                )
        else:
            self.hook.wait_for_endpoint(
                name, check_interval=self.check_interval, max_check_interval=self.max_check_interval
            )
        return with_model_version(self.hook.finish_deploy(plan), model_version)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
        model_version: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if plan is None:
            raise EndpointError("?", f"resumed without the deploy plan (event {event!r})")
        from airflow_autogluon_cloud.triggers.events import TIMEOUT, WaitEvent

        waited = WaitEvent.from_dict(event or {}, ENDPOINT, plan["endpoint_name"])
        if waited.status == TIMEOUT:
            raise JobTimeoutError("Endpoint", waited.name, waited.resource_status or "?", 0)
        # finish_deploy checks the endpoint really serves the new config; if not, it rolls back and raises.
        result = self.hook.finish_deploy(plan)
        if not waited.is_success:
            raise TriggerEventError(
                f"Endpoint {waited.name!r}: the trigger reported {waited.status!r}: {waited.message}"
            )
        return with_model_version(result, model_version)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage, when its provider is installed: the registry version and the model in; the endpoint out."""
        from airflow_autogluon_cloud.lineage import facets

        return facets.deploy(self, task_instance)
