"""Typed errors raised by the provider.

Every error derives from :class:`AutoGluonCloudError` (itself an ``AirflowException`` so Airflow
treats it as a task failure) and carries the resource name, its status and the reason, so a
failed task's log says what failed, where, and why.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException


class AutoGluonCloudError(AirflowException):
    """Base class of every error this provider raises."""


class InvalidParameterError(AutoGluonCloudError, ValueError):
    """A parameter has a value the provider cannot use; raised before any resource is created.

    :param parameter: the parameter's name, as the user wrote it.
    :param value: the offending value (shortened in the message).
    :param fix: one sentence telling the user what to do instead.
    """

    def __init__(self, parameter: str, value: object, fix: str) -> None:
        self.parameter = parameter
        self.value = value
        self.fix = fix
        shown = repr(value)
        if len(shown) > 200:
            shown = shown[:197] + "..."
        super().__init__(f"Invalid `{parameter}`={shown}: {fix}")


class ResourceNotFoundError(AutoGluonCloudError):
    """A job, model, endpoint configuration or endpoint does not exist."""

    def __init__(self, kind: str, name: str, backend: str, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.backend = backend
        msg = f"{kind} {name!r} does not exist on the {backend!r} backend."
        super().__init__(f"{msg} {hint}".strip())


class JobFailedError(AutoGluonCloudError):
    """A training or transform job ended in a state that is not success (Failed or Stopped)."""

    def __init__(
        self, kind: str, name: str, status: str, reason: str | None = None, log_tail: str | None = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.status = status
        self.reason = reason or "no reason given"
        self.log_tail = log_tail
        msg = f"{kind} {name!r} ended with status {status}: {self.reason}"
        if log_tail:
            msg += "\nLast lines of its log:\n" + log_tail
        super().__init__(msg)


class JobTimeoutError(AutoGluonCloudError):
    """Waiting for a job or endpoint ran past the limit derived from its maximum runtime."""

    def __init__(self, kind: str, name: str, status: str, waited_seconds: float) -> None:
        self.kind = kind
        self.name = name
        self.status = status
        self.waited_seconds = waited_seconds
        super().__init__(
            f"{kind} {name!r} is still {status} after waiting {waited_seconds:.0f}s, longer than its "
            "maximum runtime allows; it has been left running. Stop it with AGCleanupOperator or the "
            "console if it is stuck."
        )


class EndpointError(AutoGluonCloudError):
    """An endpoint failed, is not in service, or rejected a request."""

    def __init__(self, endpoint_name: str, message: str, status: str | None = None) -> None:
        self.endpoint_name = endpoint_name
        self.status = status
        super().__init__(f"Endpoint {endpoint_name!r}: {message}")


class EndpointInvocationError(EndpointError):
    """An endpoint answered a request with an HTTP error (4xx/5xx): what it said, and where to look.

    :param endpoint_name: the endpoint.
    :param http_status: the status the model (or the runtime) answered with.
    :param message: the endpoint's own message.
    :param original_message: SageMaker: the container's message inside a ``ModelError``.
    :param log_url: SageMaker: the CloudWatch console page of the log stream that served the request.
    :param log_tail: local backend: the last lines of the endpoint's ``endpoint.log``.
    """

    def __init__(
        self,
        endpoint_name: str,
        http_status: int,
        message: str,
        *,
        original_message: str | None = None,
        log_url: str | None = None,
        log_tail: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.endpoint_message = message
        self.original_message = original_message
        self.log_url = log_url
        self.log_tail = log_tail
        text = f"the model answered {http_status}: {original_message or message}"
        if original_message and message and original_message not in message:
            text += f" ({message})"
        if log_url:
            text += f"\nIts log: {log_url}"
        if log_tail:
            text += "\nLast lines of endpoint.log:\n" + log_tail
        super().__init__(endpoint_name, text)

    @property
    def is_client_error(self) -> bool:
        """Whether the request was at fault (4xx): fix the data or options rather than the endpoint."""
        return 400 <= self.http_status < 500


class TriggerEventError(AutoGluonCloudError):
    """A deferred task resumed with an event that is not an explicit success."""


class ArtifactError(AutoGluonCloudError):
    """A model or result artifact is missing, unsafe, or incompatible with the installed AutoGluon."""


class DataQualityError(AutoGluonCloudError):
    """A batch's data checks found violations and the task was asked to fail on them (its output is written)."""

    def __init__(self, job_name: str, report: dict[str, object]) -> None:
        self.job_name = job_name
        self.report = report
        checks = report.get("checks") or {}
        named = "; ".join(f"{check}: {', '.join(map(str, cols))}" for check, cols in checks.items())  # type: ignore[attr-defined]
        super().__init__(
            f"Transform job {job_name}: {report.get('violations')} data check violation(s) against the model's "
            f"baseline ({named}); the output is written ({report.get('violations_uri')})"
        )
