"""Calling the SageMaker APIs: clients, and reading AWS's answers.

Throttling and transient service errors are retried by botocore itself, as the clients' ``Config``
says (see :attr:`airflow_autogluon_cloud.aws.AwsSettings.client_config`); "not found" answers
become :class:`ResourceNotFoundError`; deletes are idempotent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from airflow_autogluon_cloud.exceptions import ResourceNotFoundError

log = logging.getLogger(__name__)


def error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Message", err))


def is_not_found(err: Exception) -> bool:
    """Whether AWS answered that the named resource does not exist."""
    message = error_message(err).lower()
    return error_code(err) in ("ValidationException", "ResourceNotFound", "ValidationError") and (
        "not found" in message or "could not find" in message or "does not exist" in message
    )


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]


def epoch(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def decode_hyperparameter(value: str) -> str:
    """A script-mode hyperparameter as sent: JSON-encoded strings are decoded."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    return decoded if isinstance(decoded, str) else value


class SageMakerApi:
    """boto3 clients by service name, and calls on them.

    :param client_factory: builds boto3 clients by service name (``sagemaker``,
        ``sagemaker-runtime``, ``logs``, ...), configured with their retries.
    :param sleep: unused (retries wait inside botocore); accepted until the backend stops passing it.
    """

    def __init__(self, client_factory: Callable[[str], Any], sleep: Callable[[float], None] | None = None) -> None:
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}

    def client(self, service: str = "sagemaker") -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def call(self, operation: str, service: str = "sagemaker", **params: Any) -> Any:
        """Call an API operation; the client's botocore retry configuration handles throttling."""
        return getattr(self.client(service), operation)(**params)

    def describe(self, operation: str, kind: str, name: str, **params: Any) -> Any:
        """A ``Describe*`` call whose "not found" answer becomes :class:`ResourceNotFoundError`."""
        from botocore.exceptions import ClientError

        try:
            return self.call(operation, **params)
        except ClientError as err:
            if is_not_found(err):
                raise ResourceNotFoundError(kind, name, "sagemaker") from None
            raise

    def delete(self, operation: str, kind: str, name: str, **params: Any) -> None:
        """A ``Delete*`` call for which an absent resource is not an error."""
        from botocore.exceptions import ClientError

        try:
            self.call(operation, **params)
            log.info("Deleted %s %s", kind.lower(), name)
        except ClientError as err:
            if not is_not_found(err):
                raise
            log.info("%s %s is already gone", kind, name)
