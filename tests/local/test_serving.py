"""Deploy, real-time and batch prediction, cleanup on the local backend, with a real model."""

from __future__ import annotations

import http.client
import io
import json
import os
import tarfile
import threading
import time

import boto3
import pandas as pd
import pytest

from airflow_autogluon_cloud.archives import safe_extract
from airflow_autogluon_cloud.backends.local import processes
from airflow_autogluon_cloud.exceptions import (
    ArtifactError,
    EndpointError,
    InvalidParameterError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import FAST_FIT_ARGS, LABEL, run_dag, task_states

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
    name = "ag-af-test-serving"
    plan = hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"])
    result = hook.finish_deploy(plan)
    yield result
    hook.delete_endpoint(name)


def test_deploy_and_predict_through_hook(hook, endpoint, predictor, churn_frames):
    _, test = churn_frames
    assert endpoint["action"] == "create"
    assert endpoint["url"].startswith("http://127.0.0.1:")
    pred = hook.predict_real_time(endpoint["endpoint_name"], test)
    assert isinstance(pred, pd.Series)
    assert pred.name == LABEL
    assert pred.tolist() == predictor.predict(test).tolist()
    proba = hook.predict_proba_real_time(endpoint["endpoint_name"], test)
    expected = predictor.predict_proba(test)
    assert list(proba.columns) == [str(c) for c in expected.columns]
    assert (proba.to_numpy() - expected.to_numpy()).max() < 1e-6


def test_predict_from_csv_path(hook, endpoint, churn_frames, tmp_path):
    _, test = churn_frames
    path = tmp_path / "rows.csv"
    test.head(7).to_csv(path, index=False)
    assert len(hook.predict_real_time(endpoint["endpoint_name"], str(path))) == 7


def test_plain_http_client_and_every_content_type(endpoint, churn_frames, predictor):
    _, test = churn_frames
    rows = test.head(5)
    expected = predictor.predict(rows).tolist()
    host, port = endpoint["url"].removeprefix("http://").split(":")
    bodies = {
        "text/csv": rows.to_csv(index=False).encode(),
        "application/json": rows.to_json(orient="records").encode(),
        "application/jsonl": rows.to_json(orient="records", lines=True).encode(),
    }
    buf = io.BytesIO()
    rows.to_parquet(buf, index=False)
    bodies["application/x-parquet"] = buf.getvalue()
    for content_type, body in bodies.items():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request(
            "POST", "/invocations", body=body, headers={"Content-Type": content_type, "Accept": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 200, content_type
        answer = json.loads(response.read())
        assert [r[LABEL] for r in answer] == expected, content_type
    # headerless CSV in training column order (how batch mini-batches arrive)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(
        "POST",
        "/invocations",
        body=rows.to_csv(index=False, header=False).encode(),
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    response = conn.getresponse()
    assert response.status == 200
    assert pd.read_csv(io.BytesIO(response.read()))[LABEL].tolist() == expected
    conn.request("GET", "/ping")
    assert conn.getresponse().status == 200


def test_boto3_runtime_client_as_in_the_seed(endpoint, churn_frames, predictor):
    _, test = churn_frames
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint["url"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    response = client.invoke_endpoint(
        EndpointName=endpoint["endpoint_name"],
        ContentType="text/csv",
        Accept="application/json",
        Body=test.head(4).to_csv(),
    )
    answer = json.loads(response["Body"].read().decode())
    assert [r[LABEL] for r in answer] == predictor.predict(test.head(4)).tolist()
    with pytest.raises(client.exceptions.ModelError, match="missing columns: plan"):
        client.invoke_endpoint(
            EndpointName=endpoint["endpoint_name"],
            ContentType="application/json",
            Accept="application/json",
            Body=test.drop(columns=["plan"]).head(2).to_json(orient="records"),
        )


def test_wrong_columns_and_oversize_are_client_errors(hook, endpoint, churn_frames):
    _, test = churn_frames
    with pytest.raises(EndpointError, match="400: missing columns: region"):
        hook.invoke(endpoint["endpoint_name"], test.drop(columns=["region"]).to_csv(index=False).encode())
    host, port = endpoint["url"].removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/invocations", body=b"x" * (6 * 1024 * 1024 + 1), headers={"Content-Type": "text/csv"})
    assert conn.getresponse().status == 413


def test_requests_answered_without_scoring_leave_a_kept_alive_connection_usable(endpoint, churn_frames, predictor):
    """A 404 is sent before the body is read; the server must drop the body, or the next request
    on the connection would start with it (and get a 400 for a request line made of CSV)."""
    _, test = churn_frames
    host, port = endpoint["url"].removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = test.head(3).to_csv(index=False).encode()
    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    for path in ("/no-such-path", "/endpoints/another-endpoint/invocations"):
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 404
    conn.request("POST", "/invocations", body=body, headers=headers)
    response = conn.getresponse()
    assert response.status == 200
    assert [r[LABEL] for r in json.loads(response.read())] == predictor.predict(test.head(3)).tolist()


def test_unknown_endpoint_and_not_in_service(hook, trained_job):
    with pytest.raises(ResourceNotFoundError, match="ag-af-no-such-endpoint"):
        hook.predict_real_time("ag-af-no-such-endpoint", pd.DataFrame({"a": [1]}))
    with pytest.raises(InvalidParameterError, match="model_uri"):
        hook.start_deploy(endpoint_name="ag-af-x", model_uri="/nonexistent/model.tar.gz")


def test_update_switches_model_without_failed_requests(hook, trained_job, churn_frames, tmp_path):
    """Deploy model A, update the same endpoint to model B while requests keep flowing."""
    train, test = churn_frames
    second = hook.start_training(
        job_name="ag-af-test-second-model",
        train_data=train.sample(frac=0.7, random_state=3),
        predictor_init_args={"label": LABEL},
        predictor_fit_args=FAST_FIT_ARGS,
    )
    hook.wait_for_job("training", second.job_name, check_interval=1, max_check_interval=2)
    model_b = hook.training_result(second.job_name)["model_artifact_uri"]
    name = "ag-af-test-update"
    first = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
    old_pid = hook.backend.store.get("endpoint", name).pid
    errors: list[Exception] = []
    answered = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                answered.append(len(hook.predict_real_time(name, test.head(20))))
            except Exception as err:
                errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        plan = hook.start_deploy(endpoint_name=name, model_uri=model_b)
        assert plan["action"] == "update"
        updated = hook.finish_deploy(plan)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert len(answered) > 10
    assert updated["config_name"] != first["config_name"]
    assert updated["url"] != first["url"]
    assert not processes.is_alive(old_pid, None)
    # the replaced config and model were removed; the endpoint serves model B
    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_endpoint_config(first["config_name"])
    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_model(first["model_name"])
    # redeploying the same model is a no-op reattach
    assert hook.start_deploy(endpoint_name=name, model_uri=model_b)["action"] == "reattach"
    hook.delete_endpoint(name)


def test_killed_endpoint_fails_clearly_and_redeploy_recovers(hook, trained_job, churn_frames):
    import signal

    _, test = churn_frames
    name = "ag-af-test-killed-ep"
    hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
    pid = hook.backend.store.get("endpoint", name).pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    with pytest.raises(EndpointError, match=name):
        hook.predict_real_time(name, test.head(2))
    assert hook.backend.describe_endpoint(name).status.value == "Failed"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
    assert result["action"] == "recreate"
    assert len(hook.predict_real_time(name, test.head(2))) == 2
    hook.delete_endpoint(name)


def test_deploy_killed_before_its_server_started_is_finished_by_the_retry(hook, trained_job, churn_frames, monkeypatch):
    # The worker dies after the server was prepared and recorded, before the process started
    # (simulated by the launcher raising). The retry finds the endpoint Creating, and once the
    # spawn grace has passed the server is started for it, instead of the deploy failing.
    from airflow_autogluon_cloud.backends.local import endpoints

    _, test = churn_frames
    name = "ag-af-test-unstarted-ep"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(processes, "spawn_detached", killed)
    with pytest.raises(KeyboardInterrupt):
        hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"])
    monkeypatch.undo()
    pending = hook.backend.store.get("endpoint", name).data["pending"]
    assert pending
    assert not pending.get("pid")
    monkeypatch.setattr(endpoints, "_SPAWN_GRACE_SECONDS", 0.5)
    time.sleep(0.6)

    retry = hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"])
    assert retry["action"] == "reattach"
    hook.wait_for_endpoint(name, check_interval=0.5, max_check_interval=1, timeout=120)
    result = hook.finish_deploy(retry)
    assert result["url"].startswith("http://127.0.0.1:")
    assert len(hook.predict_real_time(name, test.head(2))) == 2
    hook.delete_endpoint(name)


def test_batch_predict_larger_than_one_chunk_matches_in_process(hook, trained_job, predictor, churn_frames):
    from airflow_autogluon_cloud.example_data import make_churn

    data = make_churn(12_000, seed=11, with_label=False)
    sub = hook.start_batch_predict(
        job_name="ag-af-test-batch",
        model_uri=trained_job["model_artifact_uri"],
        test_data=data,
        instance_count=2,
        environment={"AG_BATCH_CHUNK_ROWS": "2500"},
    )
    hook.wait_for_job("transform", sub.job_name, check_interval=1, max_check_interval=2)
    result = hook.batch_result(sub.job_name)
    assert result["status"] == "Completed"
    assert result["output_uri"].endswith("test_data.csv.out")
    out = hook.read_predict_results(sub.job_name)
    assert len(out) == len(data)
    assert out[LABEL].tolist() == predictor.predict(data).tolist()
    expected = predictor.predict_proba(data)
    assert abs(out["yes_proba"].to_numpy() - expected["yes"].to_numpy()).max() < 1e-6
    path = hook.download_predict_results(sub.job_name, predict_proba=True, include_predict=True)
    saved = pd.read_csv(path)
    assert list(saved.columns) == [LABEL, "no", "yes"]
    assert len(saved) == len(data)
    log = hook.backend.log_path("transform", sub.job_name).read_text()
    assert "with 2 worker(s)" in log


def test_batch_forked_workers_match_one_process_and_record_phases(hook, trained_job):
    from pathlib import Path

    from airflow_autogluon_cloud.example_data import make_churn

    data = make_churn(7_000, seed=12, with_label=False)
    outputs = {}
    phases = ["runner_started", "imported", "model_loaded", "workers_started", "first_scored", "scored", "completed"]
    for workers in (1, 2):
        sub = hook.start_batch_predict(
            job_name=f"ag-af-test-batch-w{workers}",
            model_uri=trained_job["model_artifact_uri"],
            test_data=data,
            instance_count=workers,
            environment={"AG_BATCH_CHUNK_ROWS": "1000"},
        )
        hook.wait_for_job("transform", sub.job_name, check_interval=0.5, max_check_interval=1)
        record = hook.backend.store.get("transform", sub.job_name)
        assert record.status == "Completed"
        assert record.data["rows"] == len(data)
        timings = record.data["timings"]
        assert list(timings) == phases
        stamps = [record.created_at, *timings.values(), record.ended_at]
        assert stamps == sorted(stamps)
        outputs[workers] = Path(record.data["output_uri"]).read_bytes()
    # The runner scoring alone and two workers forked from it write the same bytes.
    assert outputs[1] == outputs[2]
    assert outputs[1].count(b"\n") == len(data)


def test_empty_batch_input_rejected(hook, trained_job, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("tenure_months,monthly_charges,plan,region,support_tickets,autopay\n")
    with pytest.raises(InvalidParameterError, match="no data rows"):
        hook.start_batch_predict(
            job_name="ag-af-test-empty", model_uri=trained_job["model_artifact_uri"], test_data=str(empty)
        )
    with pytest.raises(InvalidParameterError, match=r"column\(s\) plan, region, support_tickets, autopay not found"):
        hook.start_batch_predict(
            job_name="ag-af-test-cols",
            model_uri=trained_job["model_artifact_uri"],
            test_data=pd.DataFrame({"tenure_months": [1], "monthly_charges": [2.0]}),
        )


def test_cleanup_leaves_no_process_and_no_state(hook, trained_job):
    name = "ag-af-test-cleanup"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
    record = hook.backend.store.get("endpoint", name)
    assert processes.is_alive(record.pid, record.pid_start)
    assert hook.delete_endpoint(name)["deleted"]
    assert hook.delete_endpoint(name)["deleted"] is False  # idempotent
    assert not processes.is_alive(record.pid, record.pid_start)
    assert hook.backend.store.get("endpoint", name) is None
    assert hook.backend.store.get("endpoint_config", result["config_name"]) is None
    assert hook.backend.store.get("model", result["model_name"]) is None
    assert not (hook.local_root / "endpoint" / name).exists()


def test_teardown_dag_removes_endpoint_when_middle_task_fails(airflow_db, trained_job, churn_frames, monkeypatch):
    monkeypatch.setenv("AGC_TEST_MODEL_URI", trained_job["model_artifact_uri"])
    monkeypatch.setenv("AGC_TEST_ENDPOINT", "ag-af-test-teardown")
    dag_run = run_dag("agc_test_teardown")
    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["deploy"] == "success"
    assert states["smoke_test"] == "success"
    assert states["broken_step"] == "failed"
    assert states["cleanup"] == "success"
    hook = AutoGluonCloudHook(aws_conn_id=None)
    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_endpoint("ag-af-test-teardown")


def test_info_and_local_predictor_version_check(hook, trained_job, tmp_path):
    info = hook.info(fit_job_name=trained_job["job_name"])
    assert info["fit_job"]["status"] == "Completed"
    assert info["fit_job"]["artifact_path"] == trained_job["model_artifact_uri"]
    # an artifact claiming another AutoGluon version is refused unless asked
    source = tmp_path / "model"
    safe_extract(trained_job["model_artifact_uri"], source)
    (source / "version.txt").write_text("0.8.2")
    fake = tmp_path / "old" / "model.tar.gz"
    fake.parent.mkdir()
    with tarfile.open(fake, "w:gz") as tar:
        for child in source.iterdir():
            tar.add(child, arcname=child.name)
    with pytest.raises(ArtifactError, match=r"AutoGluon 0\.8\.2.*require_version_match=False"):
        hook.to_local_predictor(str(fake), tmp_path / "load")


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_archives_rejected(tmp_path, kind):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        # A harmless member first: extraction is one pass, so it is written before the bad one is seen.
        good = tarfile.TarInfo("models/fine.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo({"dotdot": "../escape.txt", "absolute": "/tmp/abs.txt"}.get(kind, "member"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        data = b"x" if info.isfile() else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "out").mkdir()
    with pytest.raises(ArtifactError, match="Refusing to extract"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert not list((tmp_path / "out").iterdir())  # not even the harmless member
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "out"]  # no partial extraction left


def test_extraction_into_an_existing_directory_replaces_files_of_the_same_name(tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("code/serve.py", b"new"), ("learner.pkl", b"L")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "model"
    (target / "code").mkdir(parents=True)
    (target / "code" / "serve.py").write_bytes(b"old")
    (target / "kept.txt").write_bytes(b"K")
    assert safe_extract(archive, target) == target.resolve()
    assert (target / "code" / "serve.py").read_bytes() == b"new"
    assert (target / "learner.pkl").read_bytes() == b"L"
    assert (target / "kept.txt").read_bytes() == b"K"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.tar.gz"]


def test_archives_put_files_first_and_extraction_reports_each_member_as_it_goes(tmp_path):
    """Streaming a model archive, a reader learns the model's kind (training_summary.json) before
    the models are unpacked: the batch runner imports AutoGluon meanwhile."""
    from airflow_autogluon_cloud.archives import make_tarball

    source = tmp_path / "model"
    (source / "models" / "LightGBM").mkdir(parents=True)
    (source / "models" / "LightGBM" / "model.pkl").write_bytes(b"m" * 1000)
    (source / "training_summary.json").write_text('{"predictor_type": "tabular"}')
    (source / "version.txt").write_text("1.4.0")
    make_tarball(source, tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        names = tar.getnames()
    assert names.index("training_summary.json") < names.index("models/LightGBM/model.pkl"), names

    seen: list[tuple[str, bool, bool]] = []

    def on_member(name, path):
        # written (in the temporary directory), not yet in the target
        seen.append((name, path.exists(), (tmp_path / "out" / name).exists()))

    safe_extract(tmp_path / "model.tar.gz", tmp_path / "out", on_member)
    assert [name for name, _, _ in seen] == names
    assert all(written and not in_target for _, written, in_target in seen), seen
    assert (tmp_path / "out" / "models" / "LightGBM" / "model.pkl").read_bytes() == b"m" * 1000


def test_extraction_merges_into_a_target_another_extraction_filled_meanwhile(tmp_path, monkeypatch):
    """The target was empty when checked, but another extraction moved its tree there first: the
    whole-tree rename fails, and the members are merged in instead of the job failing."""
    from airflow_autogluon_cloud import archives

    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("models/m.pkl")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"new"))
    target = tmp_path / "model"
    target.mkdir()
    real_replace = os.replace
    raced = []

    def replace(src, dst):
        if not raced and os.path.isdir(src):  # the other extraction gets there first
            raced.append(dst)
            (target / "models").mkdir()
            (target / "models" / "m.pkl").write_bytes(b"old")
            raise OSError(39, "Directory not empty")
        return real_replace(src, dst)

    monkeypatch.setattr(archives.os, "replace", replace)
    safe_extract(archive, target)
    assert raced == [target.resolve()]
    assert (target / "models" / "m.pkl").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.tar.gz"]
