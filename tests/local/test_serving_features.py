"""Serving features on a real local endpoint: actionable errors, prediction options, serverless
concurrency and idle stop, several server processes (issue 14)."""

from __future__ import annotations

import pytest

from airflow_autogluon_cloud.exceptions import EndpointInvocationError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hook():
    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def endpoint(hook, trained_job):
    name = "ag-af-test-features"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
    yield result
    hook.delete_endpoint(name)


def test_bad_request_raises_typed_error_with_status_message_and_log_tail(hook, endpoint, churn_frames):
    _, test = churn_frames
    with pytest.raises(EndpointInvocationError) as err:
        hook.predict_real_time(endpoint["endpoint_name"], test.drop(columns=["region"]).head(3))
    error = err.value
    assert error.endpoint_name == endpoint["endpoint_name"]
    assert error.http_status == 400
    assert error.is_client_error
    assert "missing columns: region" in error.endpoint_message
    # the endpoint's own log records the rejected request, and the error quotes it
    assert "-> 400: missing columns: region" in error.log_tail
    assert "Last lines of endpoint.log" in str(error)
    with pytest.raises(EndpointInvocationError, match="415: unsupported content type"):
        hook.invoke(endpoint["endpoint_name"], b"<x/>", content_type="application/xml")
