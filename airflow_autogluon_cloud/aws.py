"""AWS access through the Amazon provider's connection, from a handful of primitives.

Credentials, regions, ``endpoint_url``/``service_config`` and role assumption (``role_arn`` with
``assume_role_kwargs``, refreshable credentials) are all the Amazon provider's
``AwsBaseHook``; this module only lets arguments override the connection's role and external id,
and keeps the settings as primitives so triggers and detached runners can rebuild them.

Retries are botocore's own (standard mode, :data:`DEFAULT_RETRIES`), merged under the
connection's ``config_kwargs``: whatever the connection, ``AWS_RETRY_MODE``/``AWS_MAX_ATTEMPTS`` or
the AWS profile says about retries wins over this provider's default.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

# Throttling and transient errors (5xx, timeouts) are retried with botocore's jittered exponential
# backoff; six attempts in all ride out SageMaker's per-account rate limits during polling.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "total_max_attempts": 6}
# Where botocore reads retry settings outside a Config: environment variable and profile key.
_RETRY_SOURCES = {"mode": ("AWS_RETRY_MODE", "retry_mode"), "total_max_attempts": ("AWS_MAX_ATTEMPTS", "max_attempts")}


@dataclass
class AwsSettings:
    """Which AWS connection to use, and optional overrides of what it says.

    :param aws_conn_id: Airflow connection id (an ``aws`` connection); ``None`` uses boto3's
        default credential chain.
    :param region_name: overrides the connection's ``region_name``.
    :param role_arn: role to assume for API calls, overriding the connection's ``role_arn``.
    :param external_id: ``ExternalId`` for the assume-role call.
    """

    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    role_arn: str | None = None
    external_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AwsSettings:
        return cls(**(data or {}))

    @cached_property
    def base_hook(self) -> AwsBaseHook:
        """The Amazon provider's hook, with the role overrides applied to its connection config."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="sagemaker")
        with warnings.catch_warnings():
            # This provider's own connection type carries the same fields as an ``aws`` one.
            warnings.filterwarnings("ignore", message=".*expected connection type 'aws', got 'autogluon_cloud'")
            config = hook.conn_config  # cached on the hook, so the overrides below stick
        if self.role_arn:
            config.role_arn = self.role_arn
            config.assume_role_method = config.assume_role_method or "assume_role"
        if self.external_id:
            config.assume_role_kwargs = {**config.assume_role_kwargs, "ExternalId": self.external_id}
        return hook

    @cached_property
    def session(self) -> Any:
        """boto3 session from the connection; with a role, its credentials refresh themselves."""
        return self.base_hook.get_session(region_name=self.region_name)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (``s3``, ``sagemaker``, ``sagemaker-runtime``, ``logs``).

        ``endpoint_url`` and ``service_config`` from the connection apply per service, as they do
        for the Amazon provider's own hooks.
        """
        hook = self.base_hook
        return self.session.client(
            service_name=service,
            region_name=self.resolved_region,
            endpoint_url=hook.conn_config.get_service_endpoint_url(service_name=service),
            config=self.client_config,
            verify=hook.verify,
        )

    @cached_property
    def client_config(self) -> Config:
        """The connection's botocore ``Config`` (``config_kwargs``) with default retries filled in.

        Each retry setting (mode, number of attempts) keeps the value the connection's
        ``config_kwargs["retries"]``, the environment or the AWS profile gives it; only unset ones
        take :data:`DEFAULT_RETRIES`.
        """
        from botocore.config import Config

        connection_config = self.base_hook.config
        chosen = dict(connection_config.retries or {})
        if "max_attempts" in chosen:  # botocore's other spelling: retries after the first attempt
            chosen.setdefault("total_max_attempts", chosen.pop("max_attempts") + 1)
        try:
            profile = self.session._session.get_scoped_config()
        except Exception:  # a missing profile fails later, where boto3 reports it clearly
            profile = {}
        defaults = {
            key: value
            for key, value in DEFAULT_RETRIES.items()
            if key not in chosen and _RETRY_SOURCES[key][0] not in os.environ and _RETRY_SOURCES[key][1] not in profile
        }
        if not defaults:
            return connection_config
        return connection_config.merge(Config(retries={**defaults, **chosen}))

    @property
    def resolved_region(self) -> str | None:
        return self.region_name or self.base_hook.conn_config.region_name

    @property
    def execution_role_arn(self) -> str | None:
        """The role SageMaker jobs run as: the override, else the connection's ``role_arn``."""
        return self.role_arn or self.base_hook.conn_config.role_arn

    def connection_env(self) -> dict[str, str]:
        """Environment that lets a detached process on this machine resolve the same connection.

        The connection travels the way Airflow itself hands connections to subprocesses
        (``AIRFLOW_CONN_<ID>``): in the child's environment only, never in a file, log or state row.
        """
        if not self.aws_conn_id:
            return {}
        from airflow.exceptions import AirflowNotFoundException

        try:
            conn = self.base_hook.get_connection(self.aws_conn_id)
        except AirflowNotFoundException:
            return {}
        payload = json.loads(conn.as_json())
        return {f"AIRFLOW_CONN_{self.aws_conn_id.upper()}": json.dumps(payload)}
