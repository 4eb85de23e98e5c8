"""A local endpoint that a careful attacker or a clumsy client cannot starve, crash or flood (issue 30).

Two kinds of real server: endpoints deployed through the hook (their own processes, logs and
limits from the environment), and the same server class run in this process with the trained
model, where a test sets the limits it needs (short timeouts, a small connection cap). Every
socket is on loopback.
"""

from __future__ import annotations

import http.client
import os
import resource
import socket
import threading
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_autogluon_cloud.exceptions import EndpointError, EndpointInvocationError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import LABEL

LOG_MAX_BYTES = 16 * 1024


def _csv_row(churn_frames) -> bytes:
    features = churn_frames[1].drop(columns=[LABEL], errors="ignore").head(1)
    return features.to_csv(index=False).encode()


def _deploy(hook: AutoGluonCloudHook, name: str, model_uri: str, env: dict[str, str], **kwargs):
    """Deploy with ``env`` in the environment the server process inherits."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=model_uri, **kwargs))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def deployed(trained_job, tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening-root")
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(root))
    name = "ag-af-hardened"
    try:
        result = _deploy(
            hook, name, trained_job["model_artifact_uri"], {"AG_ENDPOINT_LOG_MAX_BYTES": str(LOG_MAX_BYTES)}
        )
        host, port = result["url"].removeprefix("http://").split(":")
        yield SimpleNamespace(host=host, port=int(port), hook=hook, name=name, log=root / "endpoint" / name)
    finally:
        hook.delete_endpoint(name)


@pytest.fixture(scope="module")
def loaded_model(trained_job, tmp_path_factory):
    """The trained model, unpacked and loaded with its serving script (as a server process would)."""
    from airflow_autogluon_cloud.archives import safe_extract
    from airflow_autogluon_cloud.container.local_endpoint import load_handler

    model_dir = safe_extract(
        trained_job["model_artifact_uri"].removeprefix("file://"), tmp_path_factory.mktemp("inproc") / "model"
    )
    return load_handler(str(model_dir), "serve.py")


@pytest.fixture
def start_server(loaded_model, monkeypatch):
    """Start an endpoint server in this process with the given limits (environment variables)."""
    from airflow_autogluon_cloud.container.local_endpoint import MAX_BODY_BYTES, EndpointServer

    servers = []

    def start(env: dict[str, str], max_concurrency: int | None = None) -> EndpointServer:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        module, model = loaded_model
        server = EndpointServer(("127.0.0.1", 0), "ag-af-inproc", module, model, MAX_BODY_BYTES, max_concurrency)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _connect(port: int, host: str = "127.0.0.1", timeout: float = 60) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds each wait)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _response(sock: socket.socket) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def _normal_request(host: str, port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


# ---- framing ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "lengths",
    [["abc"], ["-1"], ["1_0_0"], ["+5"], ["5 5"], ["0x10"], ["５"], ["5", "5"], ["5", "6"]],
    ids=["letters", "negative", "underscores", "plus", "two-numbers", "hex", "fullwidth", "twice", "two-values"],
)
def test_content_length_must_be_one_plain_number(deployed, churn_frames, lengths):
    row = _csv_row(churn_frames)
    head = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    request = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n{head}\r\n".encode() + row
    with _connect(deployed.port, deployed.host) as sock:
        sock.sendall(request)
        answer = _read_until_closed(sock)  # answered, then closed: the body's end is unknown
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    message = answer.split(b"\r\n\r\n", 1)[1]
    assert b"Content-Length" in message, message  # refused for its framing, not scored
    assert _normal_request(deployed.host, deployed.port, row) == 200


@pytest.mark.slow
def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(deployed, churn_frames):
    hidden = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s" % (len(body), body)
    )
    with _connect(deployed.port, deployed.host) as sock:
        sock.sendall(request)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, "the request hidden in the body was answered"
    assert _normal_request(deployed.host, deployed.port, _csv_row(churn_frames)) == 200


@pytest.mark.slow
def test_deeply_nested_input_is_a_400_not_a_500(deployed, churn_frames):
    row = _csv_row(churn_frames)
    for headers, body, content_type in [
        ({"X-Amzn-SageMaker-Custom-Attributes": "ag_predict_kwargs=" + "[" * 60_000}, row, "text/csv"),
        ({}, b"[" * 200_000, "application/json"),
    ]:
        conn = http.client.HTTPConnection(deployed.host, deployed.port, timeout=60)
        try:
            conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type, **headers})
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        assert response.status == 400, payload[:300]
    assert _normal_request(deployed.host, deployed.port, row) == 200


# ---- timeouts, slots and the connection cap ---------------------------------------------------------


def test_an_idle_connection_is_closed_after_the_idle_timeout(start_server):
    server = start_server({"AG_ENDPOINT_IDLE_TIMEOUT_SECONDS": "0.5"})
    with _connect(server.server_address[1], timeout=30) as sock:
        assert _read_until_closed(sock) == b""  # closed by the server, with nothing to say
    with _connect(server.server_address[1], timeout=30) as sock:  # and after an answered request
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_a_trickling_request_is_answered_408_at_its_deadline(start_server):
    server = start_server({"AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS": "1"})
    with _connect(server.server_address[1], timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        # one byte every 0.1 s: each read is quick, the request as a whole never arrives
        answer = b""
        deadline = time.monotonic() + 30
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                answer = sock.recv(65536)
                break
            except TimeoutError:
                sock.sendall(b"x")
        sock.settimeout(30)
        answer += _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_serverless_slots_are_not_held_by_bodies_still_arriving(start_server, churn_frames):
    server = start_server({"AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS": "120"}, max_concurrency=2)
    port = server.server_address[1]
    slow = [_connect(port) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        _wait_for(lambda: server.connections.in_requests == 2, "both slow requests to be read up to their bodies")
        for _ in range(5):
            assert _normal_request("127.0.0.1", port, _csv_row(churn_frames)) == 200
        _wait_for(lambda: server.in_flight == 0, "no request to be counted in flight while bodies arrive")
    finally:
        for sock in slow:
            sock.close()


def test_beyond_the_connection_cap_idle_connections_make_room_and_busy_ones_get_a_503(start_server, churn_frames):
    server = start_server({"AG_ENDPOINT_MAX_CONNECTIONS": "3", "AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS": "120"})
    port = server.server_address[1]
    idle = [_connect(port, timeout=30) for _ in range(3)]
    try:
        _wait_for(lambda: len(server.connections) == 3, "three idle connections")
        assert _normal_request("127.0.0.1", port, _csv_row(churn_frames)) == 200
        assert _read_until_closed(idle[0]) == b""  # the longest idle made room
    finally:
        for sock in idle:
            sock.close()
    _wait_for(lambda: len(server.connections) == 0, "the idle connections to be gone")
    busy = [_connect(port, timeout=30) for _ in range(3)]
    try:
        for sock in busy:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        _wait_for(lambda: server.connections.in_requests == 3, "three requests in progress")
        with _connect(port, timeout=30) as extra:
            answer = _read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"too many open connections" in answer
    finally:
        for sock in busy:
            sock.close()
    _wait_for(lambda: len(server.connections) == 0, "the unfinished requests to be dropped")
    assert _normal_request("127.0.0.1", port, _csv_row(churn_frames)) == 200


def test_polling_works_on_descriptors_past_1024(start_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    server = start_server({"AG_ENDPOINT_POLL_MICROSECONDS": "200000"})
    ours, peer = socket.socketpair()
    high = os.dup2(ours.fileno(), 1500)
    high_socket = socket.socket(fileno=high)
    try:
        peer.sendall(b"GET")
        server.poll_briefly(high_socket)  # select() raised ValueError here
        assert high_socket.recv(3) == b"GET"
    finally:
        high_socket.close()
        ours.close()
        peer.close()


# ---- logs -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_endpoint_log_is_bounded_rotated_and_cuts_client_text(deployed):
    long_name = "n" * 60_000
    for _ in range(100):
        with _connect(deployed.port, deployed.host) as sock:
            sock.sendall(
                f"POST /endpoints/{long_name}/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
            )
            assert _response(sock).status == 404
    log, rotated = deployed.log / "endpoint.log", deployed.log / "endpoint.log.1"
    assert rotated.exists(), "the log was never rotated"
    for path in (log, rotated):
        assert path.stat().st_size <= LOG_MAX_BYTES + 4096
        assert max(len(line) for line in path.read_text().splitlines()) < 2000
    assert _alive(deployed)


@pytest.mark.slow
def test_a_failed_invoke_carries_a_bounded_tail_of_the_log(deployed):
    with _connect(deployed.port, deployed.host) as sock:
        sock.sendall(
            f"POST /endpoints/{'m' * 60_000}/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        )
        assert _response(sock).status == 404
    with pytest.raises(EndpointInvocationError) as caught:
        deployed.hook.invoke(deployed.name, b"no,such\ncolumns,here\n" * 1000, content_type="text/csv")
    assert caught.value.http_status == 400
    assert len(str(caught.value)) < 10_000, f"{len(str(caught.value))} characters"
    assert "m" * 1000 not in str(caught.value)


def test_log_tail_reads_the_end_of_a_huge_log_only(tmp_path):
    from airflow_autogluon_cloud.backends.local.endpoints import LocalEndpoints
    from airflow_autogluon_cloud.backends.local.state import StateStore

    endpoints = LocalEndpoints(StateStore(tmp_path), tmp_path, None)
    log = endpoints.log_path("ag-af-big-log")
    log.parent.mkdir(parents=True)
    with open(log, "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # 200 MB (sparse), then the lines that matter
        fh.seek(0, os.SEEK_END)
        fh.write(b"\nnext to last\n" + b"x" * 100_000 + b"\nthe last line\n")
    tracemalloc.start()
    try:
        tail = endpoints.log_tail("ag-af-big-log", 3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tail.endswith("the last line")
    assert len(tail) < 2000
    assert peak < 4 * 1024 * 1024, f"log_tail held {peak / 1e6:.0f} MB"


# ---- deletion ---------------------------------------------------------------------------------


@pytest.fixture
def doomed(trained_job, tmp_path):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    try:
        _deploy(hook, "ag-af-doomed", trained_job["model_artifact_uri"], {})
        yield hook
    finally:
        hook.delete_endpoint("ag-af-doomed")  # nothing to do if the test deleted it


@pytest.mark.slow
def test_a_request_in_flight_when_the_endpoint_is_deleted_says_it_was_deleted(doomed, churn_frames, monkeypatch):
    from airflow_autogluon_cloud.backends.local import endpoint_http, processes

    backend = doomed.backend
    record = backend.store.get("endpoint", "ag-af-doomed")
    real_post = endpoint_http.post_retrying_throttles
    deleting: list[threading.Thread] = []

    def post_while_deleted(*args, **kwargs):
        # The request leaves as the endpoint is being deleted: its server is gone by the time it connects.
        thread = threading.Thread(target=doomed.delete_endpoint, args=("ag-af-doomed",))
        deleting.append(thread)
        thread.start()
        _wait_for(lambda: not processes.is_alive(record.pid, record.pid_start), "the server to stop")
        return real_post(*args, **kwargs)

    monkeypatch.setattr(endpoint_http, "post_retrying_throttles", post_while_deleted)
    try:
        with pytest.raises(EndpointError) as caught:
            doomed.invoke("ag-af-doomed", _csv_row(churn_frames), content_type="text/csv")
    finally:
        for thread in deleting:
            thread.join(60)
    assert "was deleted" in str(caught.value)
    assert "Redeploy" not in str(caught.value)


# ---- fuzz and load ----------------------------------------------------------------------------

METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "get"]),
    st.text("ABCXYZ", min_size=1, max_size=8),
)
PATHS = st.one_of(
    st.sampled_from(
        ["/ping", "/invocations", "/endpoints/ag-af-hardened/invocations", "/endpoints/x/invocations", "*", "/"]
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300),
)
HEADER_VALUES = st.one_of(
    st.sampled_from(
        ["0", "5", "-1", "abc", "1_0_0", "+5", "chunked", "text/csv", "application/json", "100-continue", "*/*"]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.integers(min_value=0, max_value=5000).map(str),
)
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Content-Length",
                "Transfer-Encoding",
                "Content-Type",
                "Accept",
                "Expect",
                "Connection",
                "X-Amzn-SageMaker-Custom-Attributes",
                "Host",
                "X-Random",
            ]
        ),
        HEADER_VALUES,
    ),
    max_size=6,
)
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", ""])


def _alive(endpoint) -> bool:
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=30)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, version=VERSIONS, headers=HEADERS, body=st.binary(max_size=2048))
def test_fuzzed_requests_are_answered_or_closed_and_the_endpoint_keeps_serving(
    deployed, method, path, version, headers, body
):
    head = f"{method} {path} {version}".rstrip() + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    with _connect(deployed.port, deployed.host, timeout=60) as sock:
        sock.sendall(head.encode("latin-1") + body)
        sock.shutdown(socket.SHUT_WR)  # all sent: a body shorter than announced ends here
        answer = _read_until_closed(sock)  # a hang would be a timeout here
    if answer:
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:200]
        status = int(status_line.split()[1])
        assert 100 <= status < 600
        assert status != 500, answer[:500]
    assert _alive(deployed)


@pytest.mark.slow
def test_a_thousand_idle_connections_do_not_stop_a_normal_client(deployed, churn_frames):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1600:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1600, hard), hard))
    row = _csv_row(churn_frames)
    idle: list[socket.socket] = []
    answers = []
    try:
        for i in range(1100):
            idle.append(_connect(deployed.port, deployed.host, timeout=60))
            if i % 100 == 99:
                answers.append(_normal_request(deployed.host, deployed.port, row))
        answers += [_normal_request(deployed.host, deployed.port, row) for _ in range(20)]
    finally:
        for sock in idle:
            sock.close()
    assert answers == [200] * len(answers)
    assert _alive(deployed)
    assert "Traceback" not in Path(deployed.log / "endpoint.log").read_text()


@pytest.mark.parametrize(
    ("variable", "bad"),
    [
        ("AG_ENDPOINT_IDLE_TIMEOUT_SECONDS", "soon"),
        ("AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS", "-1"),
        ("AG_ENDPOINT_MAX_CONNECTIONS", "0"),
        ("AG_ENDPOINT_MAX_CONNECTIONS", "2.5"),
        ("AG_ENDPOINT_LOG_MAX_BYTES", "nan"),
    ],
)
def test_a_bad_limit_setting_stops_the_server_before_it_takes_the_port(loaded_model, monkeypatch, variable, bad):
    from airflow_autogluon_cloud.container.local_endpoint import EndpointServer

    monkeypatch.setenv(variable, bad)
    module, model = loaded_model
    with pytest.raises(ValueError, match=rf"{variable}='{bad}': expected"):
        EndpointServer(("127.0.0.1", 0), "ag-af-inproc", module, model, 1024)
