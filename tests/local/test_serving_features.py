"""Serving features on a real local endpoint: actionable errors, prediction options, serverless
concurrency and idle stop, several server processes (issue 14)."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autogluon_cloud.backends.local import processes
from airflow_autogluon_cloud.exceptions import EndpointInvocationError, InvalidParameterError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import LABEL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hook():
    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def predictor(trained_job, tmp_path_factory):
    return AutoGluonCloudHook(aws_conn_id=None).to_local_predictor(
        trained_job["model_artifact_uri"], tmp_path_factory.mktemp("predictor")
    )


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


# ---- prediction options ---------------------------------------------------------------------


def _threshold_that_changes_answers(predictor, test) -> float:
    """A threshold under which the model answers some rows differently from its fitted one."""
    default = predictor.predict(test)
    proba = predictor.predict_proba(test)
    for threshold in (0.1, 0.25, 0.75, 0.9):
        if (predictor.predict_from_proba(proba, decision_threshold=threshold) != default).any():
            return threshold
    raise AssertionError("no threshold changes this model's answers; the test data is too easy")


def test_decision_threshold_changes_answers_and_batch_agrees_with_real_time(
    hook, endpoint, predictor, trained_job, churn_frames
):
    _, test = churn_frames
    name = endpoint["endpoint_name"]
    threshold = _threshold_that_changes_answers(predictor, test)
    options = {"decision_threshold": threshold}
    expected = predictor.predict_from_proba(predictor.predict_proba(test), decision_threshold=threshold)

    default = hook.predict_real_time(name, test)
    with_threshold = hook.predict_real_time(name, test, predict_kwargs=options)
    assert with_threshold.tolist() == expected.tolist()
    assert with_threshold.tolist() != default.tolist()
    # the options apply to that request only: the next one answers as before
    assert hook.predict_real_time(name, test).tolist() == default.tolist()

    sub = hook.start_batch_predict(
        job_name="ag-af-test-batch-options",
        model_uri=trained_job["model_artifact_uri"],
        test_data=test,
        predict_kwargs=options,
    )
    hook.wait_for_job("transform", sub.job_name, check_interval=1, max_check_interval=2)
    batch = hook.read_predict_results(sub.job_name)
    assert batch[LABEL].tolist() == with_threshold.tolist()
    real_time_proba = hook.predict_proba_real_time(name, test, predict_kwargs=options)
    assert abs(batch["yes_proba"].to_numpy() - real_time_proba["yes"].to_numpy()).max() < 1e-6


def test_model_and_as_multiclass_options(hook, endpoint, predictor, trained_job, churn_frames):
    _, test = churn_frames
    name = endpoint["endpoint_name"]
    names = hook.models.summary(trained_job["model_artifact_uri"])["model_names"]
    assert set(names) == set(predictor.model_names())
    other = next(m for m in names if m != predictor.model_best)
    proba = hook.predict_proba_real_time(name, test, predict_kwargs={"model": other, "as_multiclass": False})
    assert list(proba.columns) == [predictor.positive_class]
    expected = predictor.predict_proba(test, model=other, as_multiclass=False)
    assert abs(proba[predictor.positive_class].to_numpy() - expected.to_numpy()).max() < 1e-6


def test_bad_options_are_named_client_side_or_by_the_endpoint(hook, endpoint, trained_job, churn_frames, local_root):
    _, test = churn_frames
    name = endpoint["endpoint_name"]
    with pytest.raises(InvalidParameterError, match="unknown prediction option") as err:
        hook.predict_real_time(name, test, predict_kwargs={"threshold": 0.5})
    assert err.value.parameter == "predict_kwargs['threshold']"
    with pytest.raises(InvalidParameterError) as err:
        hook.predict_real_time(name, test, predict_kwargs={"decision_threshold": 1.5})
    assert err.value.parameter == "predict_kwargs['decision_threshold']"
    # the endpoint knows its model: an unknown model name is its 400, naming the option
    with pytest.raises(EndpointInvocationError, match="prediction option 'model'.*no model 'NoSuchModel'") as bad:
        hook.predict_real_time(name, test, predict_kwargs={"model": "NoSuchModel"})
    assert bad.value.http_status == 400
    # batch: checked against the model's summary before any job starts
    from airflow_autogluon_cloud.backends.local.state import StateStore

    before = len(StateStore(local_root).list("transform"))
    with pytest.raises(InvalidParameterError, match="the leaderboard has") as err:
        hook.start_batch_predict(
            job_name="ag-af-test-batch-bad-model",
            model_uri=trained_job["model_artifact_uri"],
            test_data=test,
            predict_kwargs={"model": "NoSuchModel"},
        )
    assert err.value.parameter == "predict_kwargs['model']"
    assert len(StateStore(local_root).list("transform")) == before


def test_raw_boto3_client_sends_options_in_custom_attributes(endpoint, predictor, churn_frames):
    _, test = churn_frames
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint["url"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    threshold = _threshold_that_changes_answers(predictor, test)
    response = client.invoke_endpoint(
        EndpointName=endpoint["endpoint_name"],
        ContentType="text/csv",
        Accept="application/json",
        Body=test.to_csv(index=False),
        CustomAttributes="trace=abc;ag_predict_kwargs=" + json.dumps({"decision_threshold": threshold}),
    )
    answer = pd.DataFrame(json.loads(response["Body"].read()))
    expected = predictor.predict_from_proba(predictor.predict_proba(test), decision_threshold=threshold)
    assert answer[LABEL].tolist() == expected.tolist()


# ---- serverless -------------------------------------------------------------------------------


def _runtime_client(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),  # see the throttle, do not retry it
    )


def _hold_a_request_open(url: str, body: bytes) -> socket.socket:
    """A request whose body is only half sent: its body is still arriving."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body[: len(body) // 2])
    return sock


def _hold_a_request_in_flight(url: str, body: bytes) -> socket.socket:
    """A whole request whose answer (bigger than the socket buffers: ``body`` must be large) is left
    unread: the server is still answering it, so it holds its slot until the answer is read."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: no window growth
    sock.settimeout(60)
    sock.connect((host, int(port)))
    head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    sock.recv(1, socket.MSG_PEEK)  # the answer has begun (scored, admitted): nothing is consumed
    return sock


def _status(url: str, body: bytes) -> tuple[int, str | None]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("x-amzn-ErrorType")
    finally:
        conn.close()


def test_serverless_switch_throttling_idle_stop_and_restart(hook, trained_job, predictor, churn_frames):
    _, test = churn_frames
    name, uri = "ag-af-test-serverless", trained_job["model_artifact_uri"]
    body = test.head(20).to_csv(index=False).encode()
    rows = max(1, int(5.5e6 / len(body) * 20))  # an answer of several MB, beyond the socket buffers
    big = pd.concat([test.head(20)] * (rows // 20 + 1)).head(rows).to_csv(index=False).encode()
    hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=uri))
    try:
        serverless = {"memory_size_in_mb": 2048, "max_concurrency": 1, "idle_seconds": 3}
        plan = hook.start_deploy(endpoint_name=name, model_uri=uri, serverless_config=serverless)
        assert plan["action"] == "update"  # instance-based -> serverless is an ordinary update
        url = hook.finish_deploy(plan)["url"]

        # a request whose body is still arriving holds no slot: others are answered meanwhile
        trickling = _hold_a_request_open(url, body)
        assert _status(url, body) == (200, None)
        trickling.close()
        # max_concurrency=1: while one request is in flight, the next is throttled as SageMaker's runtime does
        holder = _hold_a_request_in_flight(url, big)
        assert _status(url, body) == (429, "ThrottlingException")
        with pytest.raises(ClientError) as throttled:
            _runtime_client(url).invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        with pytest.raises(EndpointInvocationError) as err:  # the hook retried with backoff, then gave up
            hook.predict_real_time(name, test.head(20))
        assert err.value.http_status == 429
        held = http.client.HTTPResponse(holder)
        held.begin()
        assert held.status == 200
        assert len(json.loads(held.read())) == rows  # the held request was answered in full
        holder.close()
        assert hook.predict_real_time(name, test.head(5)).tolist() == predictor.predict(test.head(5)).tolist()

        # idle for idle_seconds: the server stops, the endpoint stays InService, the next call starts it again
        record = hook.backend.store.get("endpoint", name)
        deadline = time.monotonic() + 20
        while processes.is_alive(record.pid, record.pid_start) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not processes.is_alive(record.pid, record.pid_start)
        assert hook.describe_endpoint(name).status.value == "InService"
        with pytest.raises(ConnectionRefusedError):  # what a raw client sees until the next hook call
            socket.create_connection(tuple(url.removeprefix("http://").rsplit(":", 1)), timeout=5)
        started = time.monotonic()
        assert hook.predict_real_time(name, test).tolist() == predictor.predict(test).tolist()
        cold_start = time.monotonic() - started
        restarted = hook.backend.store.get("endpoint", name)
        assert restarted.pid != record.pid
        assert processes.is_alive(restarted.pid, restarted.pid_start)
        assert hook.describe_endpoint(name).url == url  # the same port again
        assert "no request for 3s; stopping until the next call" in hook.backend.endpoints.log_tail(name, 50)
        print(f"serverless cold start after an idle stop: {cold_start:.2f}s")

        # and back to instances: another ordinary update
        back = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=uri))
        assert back["action"] == "update"
        assert hook.predict_real_time(name, test.head(5)).tolist() == predictor.predict(test.head(5)).tolist()
    finally:
        hook.delete_endpoint(name)


# ---- several server processes -----------------------------------------------------------------


def _answer_pid(url: str, body: bytes) -> tuple[int, int, bytes]:
    """One prediction on a fresh connection: (status, pid of the answering process, body)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        response = conn.getresponse()
        return response.status, int(response.getheader("X-Local-Endpoint-Pid")), response.read()
    finally:
        conn.close()


def test_two_server_processes_on_one_port_from_autoscaling_min_capacity(hook, trained_job, predictor, churn_frames):
    from concurrent.futures import ThreadPoolExecutor

    _, test = churn_frames
    name = "ag-af-test-two-procs"
    deployed = hook.finish_deploy(
        hook.start_deploy(
            endpoint_name=name,
            model_uri=trained_job["model_artifact_uri"],
            # accepted locally, and fixed at min_capacity: instance_count defaults to it
            autoscaling={"min_capacity": 2, "max_capacity": 4, "target_invocations_per_instance": 100},
        )
    )
    supervisor = hook.backend.store.get("endpoint", name)
    try:
        body = test.head(50).to_csv(index=False).encode()
        expected = predictor.predict(test.head(50)).tolist()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _answer_pid(deployed["url"], body), range(24)))
        assert {status for status, _, _ in answers} == {200}
        for _, _, data in answers:
            assert pd.read_csv(io.BytesIO(data))[LABEL].tolist() == expected
        pids = {pid for _, pid, _ in answers}
        assert len(pids) == 2, pids  # both processes answered, behind the one port
        assert supervisor.pid not in pids  # the recorded process supervises; the workers serve
        assert all(processes.is_alive(pid, None) for pid in pids)
        assert "starting 2 server processes" in hook.backend.endpoints.log_tail(name, 30)
        assert hook.predict_real_time(name, test).tolist() == predictor.predict(test).tolist()
    finally:
        hook.delete_endpoint(name)
    for pid in pids:
        assert not processes.is_alive(pid, None)
