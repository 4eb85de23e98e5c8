"""Bad input: fuzzed requests to a real local endpoint, and every invalid operator argument."""

from __future__ import annotations

import http.client
import io
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

CONTENT_TYPES = [
    None,
    "",
    "text/csv",
    "text/csv; charset=utf-8",
    "application/json",
    "application/jsonl",
    "application/x-parquet",
    "application/octet-stream",
    "image/png",
    "text/plain",
    "application/xml",
]
ACCEPTS = [None, "", "*/*", "application/json", "text/csv", "application/x-parquet", "application/jsonl", "image/gif"]


@pytest.fixture(scope="module")
def endpoint(trained_job, tmp_path_factory):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path_factory.mktemp("fuzz-root")))
    result = hook.finish_deploy(
        hook.start_deploy(endpoint_name="ag-af-fuzz", model_uri=trained_job["model_artifact_uri"])
    )
    host, port = result["url"].removeprefix("http://").split(":")
    yield SimpleNamespace(host=host, port=int(port), hook=hook)
    hook.delete_endpoint("ag-af-fuzz")


def _post(endpoint, body: bytes, content_type: str | None, accept: str | None, path="/invocations"):
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=60)
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _alive(endpoint) -> bool:
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    conn.request("GET", "/ping")
    return conn.getresponse().status == 200


def _good_rows(churn_frames, n=5):
    return churn_frames[1].head(n)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=4096), content_type=st.sampled_from(CONTENT_TYPES), accept=st.sampled_from(ACCEPTS))
def test_random_bytes_never_a_server_error(endpoint, body, content_type, accept):
    status, payload = _post(endpoint, body, content_type, accept)
    assert status < 500, payload[:300]
    if status >= 400:
        assert b"message" in payload  # every error says what was wrong


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=0.99), fmt=st.sampled_from(["csv", "parquet", "json", "jsonl"]))
def test_truncated_bodies_are_4xx_or_answered(endpoint, churn_frames, cut, fmt):
    rows = _good_rows(churn_frames, 20)
    if fmt == "parquet":
        buf = io.BytesIO()
        rows.to_parquet(buf, index=False)
        body, content_type = buf.getvalue(), "application/x-parquet"
    elif fmt == "csv":
        body, content_type = rows.to_csv(index=False).encode(), "text/csv"
    elif fmt == "json":
        body, content_type = rows.to_json(orient="records").encode(), "application/json"
    else:
        body, content_type = rows.to_json(orient="records", lines=True).encode(), "application/jsonl"
    status, payload = _post(endpoint, body[: int(len(body) * cut)], content_type, "application/json")
    assert status in (200, 400), payload[:300]


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keep=st.lists(
        st.sampled_from(["tenure_months", "monthly_charges", "plan", "region", "support_tickets", "autopay"]),
        unique=True,
    ),
    extra=st.lists(st.text(alphabet="abcxyz_", min_size=1, max_size=6), max_size=3),
)
def test_wrong_column_sets_name_the_missing_columns(endpoint, churn_frames, keep, extra):
    rows = _good_rows(churn_frames)[keep] if keep else pd.DataFrame(index=range(5))
    for column in extra:
        rows = rows.assign(**{f"x_{column}": 1})
    status, payload = _post(endpoint, rows.to_json(orient="records").encode(), "application/json", "application/json")
    if len(keep) == 6:
        assert status == 200
    else:
        assert status == 400
        assert b"missing columns" in payload or b"no rows" in payload or b"records" in payload


@pytest.mark.slow
def test_empty_and_oversized_bodies(endpoint):
    assert _post(endpoint, b"", "text/csv", "application/json")[0] == 400
    status, payload = _post(endpoint, b"a" * (6 * 1024 * 1024 + 10), "text/csv", "application/json")
    assert status == 413
    assert b"6 MB" in payload
    status, _ = _post(
        endpoint, b"a" * (6 * 1024 * 1024 + 10), "text/csv", None, path="/endpoints/ag-af-fuzz/invocations"
    )
    assert status == 413
    assert _alive(endpoint)


# ---- operator arguments: every invalid combination fails before anything is created ----------


def _context(dag_id="d", task_id="t"):
    return {
        "ti": SimpleNamespace(
            dag_id=dag_id, task_id=task_id, run_id="manual__x", map_index=-1, xcom_push=lambda **kw: None
        )
    }


SERVERLESS = {"memory_size_in_mb": 2048, "max_concurrency": 4}
SCALING = {"min_capacity": 1, "max_capacity": 4, "target_invocations_per_instance": 100}
FRAME = pd.DataFrame({"a": [1, 2, 3], "churned": ["yes", "no", "yes"]})


def _fit(**kw):
    from airflow_autogluon_cloud.operators.fit import AGFitOperator

    args = {"task_id": "fit", "train_data": FRAME, "predictor_init_args": {"label": "churned"}, **kw}
    return AGFitOperator(**args)


def _deploy(**kw):
    from airflow_autogluon_cloud.operators.deploy import AGDeployOperator

    return AGDeployOperator(**{"task_id": "deploy", "model_uri": "/nonexistent/model.tar.gz", **kw})


def _batch(**kw):
    from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator

    return AGBatchPredictOperator(
        **{"task_id": "batch", "model_uri": "/nonexistent/model.tar.gz", "test_data": FRAME, **kw}
    )


def _predict(**kw):
    from airflow_autogluon_cloud.operators.predict import AGPredictOperator

    return AGPredictOperator(**{"task_id": "predict", "endpoint_name": "ag-af-x", "data": FRAME, **kw})


def _cleanup(**kw):
    from airflow_autogluon_cloud.operators.cleanup import AGCleanupOperator

    return AGCleanupOperator(**{"task_id": "cleanup", **kw})


INVALID = [
    ("fit: unknown predictor type", lambda: _fit(predictor_type="vision"), "predictor_type"),
    ("fit: label missing from data", lambda: _fit(predictor_init_args={"label": "nope"}), "train_data"),
    ("fit: no label", lambda: _fit(predictor_init_args={}), "predictor_init_args"),
    ("fit: non-JSON fit args", lambda: _fit(predictor_fit_args={"f": object()}), "predictor_fit_args"),
    ("fit: fit args as broken JSON string", lambda: _fit(predictor_fit_args="{oops"), "predictor_fit_args"),
    (
        "fit: data inside fit args",
        lambda: _fit(predictor_fit_args={"train_data": "x.csv"}),
        "predictor_fit_args['train_data']",
    ),
    (
        "fit: path in init args",
        lambda: _fit(predictor_init_args={"label": "churned", "path": "/x"}),
        "predictor_init_args['path']",
    ),
    ("fit: empty data", lambda: _fit(train_data=FRAME.iloc[0:0]), "train_data"),
    ("fit: missing file", lambda: _fit(train_data="/nope/train.csv"), "train_data"),
    ("fit: malformed s3 uri", lambda: _fit(train_data="s3://Bad_Bucket/x.csv"), "train_data"),
    ("fit: tuning data without label", lambda: _fit(tuning_data=FRAME.drop(columns="churned")), "tuning_data"),
    ("fit: invalid job name", lambda: _fit(job_name="not valid!"), "job_name"),
    ("fit: zero max runtime", lambda: _fit(max_runtime=0), "max_runtime"),
    ("fit: negative volume", lambda: _fit(volume_size=-5), "volume_size"),
    ("fit: unknown backend", lambda: _fit(backend="azure"), "backend"),
    # train and score in one job (issue 14)
    ("fit: download without predict data", lambda: _fit(download_predictions=True), "download_predictions"),
    (
        "fit: predict data for a time series with known covariates",
        lambda: _fit(
            predictor_type="timeseries",
            predictor_init_args={"target": "churned", "known_covariates_names": ["tenure"]},
            predict_data=FRAME,
        ),
        "predict_data",
    ),
    ("fit: remote predict data not CSV", lambda: _fit(predict_data="s3://bucket/new.parquet"), "predict_data"),
    ("fit: missing predict data file", lambda: _fit(predict_data="/nope/new.csv"), "predict_data"),
    (
        "fit: sagemaker with local output path",
        lambda: _fit(backend="sagemaker", cloud_output_path="/tmp/x"),
        "cloud_output_path",
    ),
    ("fit: zero check interval", lambda: _fit(check_interval=0), "check_interval"),
    ("deploy: missing model", lambda: _deploy(), "model_uri"),
    ("deploy: model uri not an archive", lambda: _deploy(model_uri="/tmp"), "model_uri"),
    ("deploy: empty model uri", lambda: _deploy(model_uri={"model_artifact_uri": None}), "model_uri"),
    ("deploy: invalid endpoint name", lambda: _deploy(endpoint_name="bad_name"), "endpoint_name"),
    ("deploy: zero instances", lambda: _deploy(instance_count=0), "instance_count"),
    # serverless endpoints (issue 14): checked before the model is even looked at
    (
        "deploy: serverless and instances",
        lambda: _deploy(serverless_config=SERVERLESS, instance_type="ml.m5.large"),
        "serverless_config",
    ),
    (
        "deploy: serverless and count",
        lambda: _deploy(serverless_config=SERVERLESS, instance_count=2),
        "serverless_config",
    ),
    (
        "deploy: serverless memory off the 1 GB steps",
        lambda: _deploy(serverless_config={**SERVERLESS, "memory_size_in_mb": 1500}),
        "serverless_config['memory_size_in_mb']",
    ),
    (
        "deploy: serverless memory above 6 GB",
        lambda: _deploy(serverless_config={**SERVERLESS, "memory_size_in_mb": 7168}),
        "serverless_config['memory_size_in_mb']",
    ),
    (
        "deploy: serverless concurrency 0",
        lambda: _deploy(serverless_config={**SERVERLESS, "max_concurrency": 0}),
        "serverless_config['max_concurrency']",
    ),
    (
        "deploy: serverless concurrency above 200",
        lambda: _deploy(serverless_config={**SERVERLESS, "max_concurrency": 201}),
        "serverless_config['max_concurrency']",
    ),
    (
        "deploy: serverless unknown key",
        lambda: _deploy(serverless_config={**SERVERLESS, "provisioned": 1}),
        "serverless_config['provisioned']",
    ),
    (
        "deploy: serverless missing concurrency",
        lambda: _deploy(serverless_config={"memory_size_in_mb": 2048}),
        "serverless_config",
    ),
    ("deploy: serverless not a dict", lambda: _deploy(serverless_config=[2048, 5]), "serverless_config"),
    (
        "deploy: serverless idle seconds 0",
        lambda: _deploy(serverless_config={**SERVERLESS, "idle_seconds": 0}),
        "serverless_config['idle_seconds']",
    ),
    # autoscaling (issue 14)
    (
        "deploy: autoscaling max below min",
        lambda: _deploy(autoscaling={**SCALING, "min_capacity": 3, "max_capacity": 2}),
        "autoscaling['max_capacity']",
    ),
    (
        "deploy: autoscaling min 0",
        lambda: _deploy(autoscaling={**SCALING, "min_capacity": 0}),
        "autoscaling['min_capacity']",
    ),
    (
        "deploy: autoscaling target not positive",
        lambda: _deploy(autoscaling={**SCALING, "target_invocations_per_instance": 0}),
        "autoscaling['target_invocations_per_instance']",
    ),
    (
        "deploy: autoscaling unknown key",
        lambda: _deploy(autoscaling={**SCALING, "metric": "cpu"}),
        "autoscaling['metric']",
    ),
    (
        "deploy: autoscaling missing target",
        lambda: _deploy(autoscaling={"min_capacity": 1, "max_capacity": 2}),
        "autoscaling",
    ),
    (
        "deploy: autoscaling negative cooldown",
        lambda: _deploy(autoscaling={**SCALING, "scale_in_cooldown": -1}),
        "autoscaling['scale_in_cooldown']",
    ),
    (
        "deploy: instance count outside autoscaling",
        lambda: _deploy(autoscaling=SCALING, instance_count=9),
        "instance_count",
    ),
    (
        "deploy: autoscaling a serverless endpoint",
        lambda: _deploy(autoscaling=SCALING, serverless_config=SERVERLESS),
        "autoscaling",
    ),
    ("batch: missing model", lambda: _batch(), "model_uri"),
    ("batch: invalid job name", lambda: _batch(job_name="x" * 70), "job_name"),
    ("batch: zero instances", lambda: _batch(instance_count=0), "instance_count"),
    # prediction options (issue 14): the option is named, before any job or request
    ("batch: unknown option", lambda: _batch(predict_kwargs={"threshold": 0.5}), "predict_kwargs['threshold']"),
    (
        "batch: threshold above 1",
        lambda: _batch(predict_kwargs={"decision_threshold": 1.5}),
        "predict_kwargs['decision_threshold']",
    ),
    (
        "batch: threshold not a number",
        lambda: _batch(predict_kwargs={"decision_threshold": "high"}),
        "predict_kwargs['decision_threshold']",
    ),
    ("batch: options not a dict", lambda: _batch(predict_kwargs=["model"]), "predict_kwargs"),
    ("batch: options broken JSON", lambda: _batch(predict_kwargs="{oops"), "predict_kwargs"),
    ("batch: empty model name", lambda: _batch(predict_kwargs={"model": ""}), "predict_kwargs['model']"),
    (
        "batch: as_multiclass not a bool",
        lambda: _batch(predict_kwargs={"as_multiclass": "no"}),
        "predict_kwargs['as_multiclass']",
    ),
    ("predict: unknown option", lambda: _predict(predict_kwargs={"proba": True}), "predict_kwargs['proba']"),
    (
        "predict: negative threshold",
        lambda: _predict(predict_kwargs={"decision_threshold": -0.1}),
        "predict_kwargs['decision_threshold']",
    ),
    ("cleanup: nothing to delete", lambda: _cleanup(), "endpoint_name"),
    ("cleanup: sweep without limits", lambda: _cleanup(sweep=True), "max_age"),
    ("cleanup: sweep with bad age", lambda: _cleanup(sweep=True, max_age="soon"), "max_age"),
    ("cleanup: sweep with bad keep", lambda: _cleanup(sweep=True, keep=42), "keep"),
]


@pytest.mark.parametrize(("case", "build", "parameter"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_operator_arguments_fail_before_creating_anything(case, build, parameter, tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT", str(root))

    def build_and_run():  # some arguments fail in the constructor, the rest in execute
        build().execute(_context())

    with pytest.raises(InvalidParameterError) as err:
        build_and_run()
    assert err.value.parameter == parameter, str(err.value)
    assert parameter.split("[")[0] in str(err.value)
    # nothing was created: no job, model or endpoint recorded, nothing staged
    from airflow_autogluon_cloud.backends.local.state import StateStore

    store = StateStore(root)
    for kind in ("training", "transform", "model", "endpoint_config", "endpoint"):
        assert store.list(kind) == [], kind
    assert not (root / "artifacts" / "staging").exists()


def test_a_rejected_later_input_removes_the_earlier_inputs_temporary_files(tmp_path, monkeypatch):
    """train_data given as a DataFrame becomes a temporary CSV; when tuning_data or predict_data then
    fails its checks, that file is removed too, not left behind in the temp directory."""
    import tempfile

    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT", str(tmp_path / "root"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    hook = AutoGluonCloudHook(aws_conn_id=None)
    for bad in ({"tuning_data": FRAME.drop(columns="churned")}, {"predict_data": "/nope/new.csv"}):
        with pytest.raises(InvalidParameterError):
            hook.start_training(
                job_name="ag-af-leak", train_data=FRAME, predictor_init_args={"label": "churned"}, **bad
            )
        assert sorted(p.name for p in tmp_path.glob("*.csv")) == [], bad
