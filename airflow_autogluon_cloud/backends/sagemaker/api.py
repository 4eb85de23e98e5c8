"""Calling the SageMaker APIs: clients, throttling retries, and reading AWS's answers.

Every call retries throttling and transient service errors with jittered exponential backoff and
nothing else; "not found" answers become :class:`ResourceNotFoundError`; deletes are idempotent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from airflow_autogluon_cloud.exceptions import ResourceNotFoundError

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 20.0


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
        ``sagemaker-runtime``, ``logs``, ...).
    :param sleep: how to wait between retries (injectable for tests).
    """

    def __init__(self, client_factory: Callable[[str], Any], sleep: Callable[[float], None] = time.sleep) -> None:
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self._sleep = sleep

    def client(self, service: str = "sagemaker") -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def call(self, operation: str, service: str = "sagemaker", **params: Any) -> Any:
        """Call an API operation, retrying throttling and transient service errors only."""
        from botocore.exceptions import ClientError

        method = getattr(self.client(service), operation)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return method(**params)
            except ClientError as err:
                code = error_code(err)
                if code not in RETRYABLE_CODES or attempt == MAX_ATTEMPTS:
                    raise
                delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                log.warning("%s throttled (%s); retry %d/%d in %.1fs", operation, code, attempt, MAX_ATTEMPTS, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

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
