"""The container entry scripts, exactly as SageMaker runs them: ``train.py`` as a subprocess under
the ``SM_*`` contract, then the model's own ``code/serve.py`` through ``model_fn``/``transform_fn``."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CONTAINER = Path(__file__).resolve().parents[2] / "airflow_autogluon_cloud" / "container"
TRAIN_SCRIPT = CONTAINER / "train.py"
FAST_FIT_ARGS = {"time_limit": 30, "hyperparameters": {"GBM": {"num_boost_round": 30}}, "verbosity": 1}
FEATURES = ["age", "tenure", "plan"]
LABEL = "churn"
TARGET = "spend"

CONTENT_TYPES = ["csv_header", "csv_no_header", "json_records", "json_instances", "jsonl", "parquet"]
ACCEPTS = ["application/json", "application/jsonl", "text/csv", "application/x-parquet", "*/*", ""]


# --------------------------------------------------------------------------- data and jobs


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic churn data: numeric ``age``, ``tenure``, categorical ``plan``; ``churn`` yes/no and
    a numeric ``spend``, both depending on the features plus noise."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    plan_effect = pd.Series(plan).map({"basic": 1.0, "plus": 0.0, "pro": -1.0}).to_numpy()
    score = 1.5 - 0.05 * tenure + 0.02 * (age - 45) + plan_effect + rng.normal(0, 0.7, rows)
    spend = 20 + 0.8 * tenure + pd.Series(plan).map({"basic": 0, "plus": 15, "pro": 40}).to_numpy()
    return pd.DataFrame(
        {
            "age": age,
            "tenure": tenure,
            "plan": plan,
            LABEL: np.where(score > 0, "yes", "no"),
            TARGET: spend + rng.normal(0, 3, rows),
        }
    )


def sm_layout(root: Path) -> dict[str, Path]:
    """Directories laid out like ``/opt/ml``."""
    dirs = {
        "train": root / "input" / "data" / "train_data",
        "tuning": root / "input" / "data" / "tuning_data",
        "ag_args": root / "input" / "data" / "ag_args",
        "model": root / "model",
        "output": root / "output",
        "output_data": root / "output" / "data",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def write_ag_args(dirs: dict[str, Path], **overrides: Any) -> None:
    args: dict[str, Any] = {
        "version": 1,
        "predictor_type": "tabular",
        "predictor_init_args": {"label": LABEL},
        "predictor_fit_args": FAST_FIT_ARGS,
        "leaderboard": True,
    }
    args.update(overrides)
    (dirs["ag_args"] / "ag_args.json").write_text(json.dumps(args))


def run_train(
    dirs: dict[str, Path], *cli_args: str, tuning: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("SM_")]:
        del env[key]
    env.update(
        {
            "SM_MODEL_DIR": str(dirs["model"]),
            "SM_OUTPUT_DATA_DIR": str(dirs["output_data"]),
            "SM_OUTPUT_DIR": str(dirs["output"]),
            "SM_CHANNEL_TRAIN_DATA": str(dirs["train"]),
            "SM_CHANNEL_AG_ARGS": str(dirs["ag_args"]),
            "SM_NUM_GPUS": "0",
        }
    )
    if tuning:
        env["SM_CHANNEL_TUNING_DATA"] = str(dirs["tuning"])
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *cli_args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def load_serve(model_dir: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, model_dir / "code" / "serve.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_model(root: Path, label: str, tuning: bool, *cli_args: str) -> dict[str, Any]:
    dirs = sm_layout(root)
    data = make_frame(300, seed=7).drop(columns=[TARGET if label == LABEL else LABEL])
    if tuning:
        data.iloc[:240].to_csv(dirs["train"] / "train.csv", index=False)
        data.iloc[240:].to_parquet(dirs["tuning"] / "tuning.parquet", index=False)
    else:
        data.to_csv(dirs["train"] / "train.csv.gz", index=False)
    (dirs["train"] / ".hidden-marker").write_text("ignored")
    write_ag_args(dirs, predictor_init_args={"label": label, "path": "/somewhere/else"})
    started = time.monotonic()
    proc = run_train(dirs, *cli_args, tuning=tuning)
    return {"dirs": dirs, "proc": proc, "seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def classification(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real classification fit (with a tuning channel and stray CLI hyperparameters)."""
    job = train_model(tmp_path_factory.mktemp("clf"), LABEL, True, "--time_limit", "30", "--h", "1")
    assert job["proc"].returncode == 0, job["proc"].stdout[-4000:] + job["proc"].stderr[-4000:]
    return job


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real regression fit, without a tuning channel."""
    job = train_model(tmp_path_factory.mktemp("reg"), TARGET, False)
    assert job["proc"].returncode == 0, job["proc"].stdout[-4000:] + job["proc"].stderr[-4000:]
    return job


@pytest.fixture(scope="module")
def served(classification: dict[str, Any]) -> tuple[ModuleType, Any, Any]:
    """``(serve module, model_fn's model, the predictor loaded in-process)``."""
    from autogluon.tabular import TabularPredictor

    model_dir = classification["dirs"]["model"]
    module = load_serve(model_dir, "ag_serve_clf")
    return module, module.model_fn(str(model_dir)), TabularPredictor.load(str(model_dir))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Rows to score: the features in a shuffled order, plus an extra column serving must drop."""
    frame = make_frame(40, seed=99)[["plan", "tenure", "age"]]
    frame["customer_id"] = [f"c{i}" for i in range(len(frame))]
    return frame


# --------------------------------------------------------------------------- request and answer codecs


def encode_request(kind: str, frame: pd.DataFrame) -> tuple[bytes | str, str]:
    if kind == "csv_header":
        return frame.to_csv(index=False).encode(), "text/csv; charset=utf-8"
    if kind == "csv_no_header":
        return frame[FEATURES].to_csv(index=False, header=False), "Text/CSV"
    if kind == "json_records":
        return frame.to_json(orient="records"), "application/json"
    if kind == "json_instances":
        return json.dumps({"instances": json.loads(frame.to_json(orient="records"))}).encode(), "application/json"
    if kind == "jsonl":
        return frame.to_json(orient="records", lines=True).encode(), "application/jsonlines"
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue(), "application/x-parquet"


def decode_answer(body: bytes | str, content_type: str) -> pd.DataFrame:
    data = body.encode() if isinstance(body, str) else body
    if content_type == "application/json":
        return pd.DataFrame.from_records(json.loads(data))
    if content_type == "application/jsonl":
        text = data.decode()
        assert text.endswith("\n")
        return pd.DataFrame.from_records([json.loads(line) for line in text.splitlines()])
    if content_type == "text/csv":
        return pd.read_csv(io.BytesIO(data))
    assert content_type == "application/x-parquet"
    return pd.read_parquet(io.BytesIO(data))


def bad_request(serve: ModuleType, model: Any, body: Any, content_type: str, accept: str = "application/json"):
    with pytest.raises(serve.BadRequestError) as info:
        serve.transform_fn(model, body, content_type, accept)
    return info.value


# --------------------------------------------------------------------------- training


def test_training_outputs(classification: dict[str, Any]) -> None:
    from autogluon.tabular import TabularPredictor

    dirs, proc = classification["dirs"], classification["proc"]
    assert "Fitting TabularPredictor" in proc.stdout
    assert "Fit finished in" in proc.stdout
    assert "Ignoring command-line arguments" in proc.stdout
    assert not (dirs["output"] / "failure").exists()

    predictor = TabularPredictor.load(str(dirs["model"]))
    assert predictor.label == LABEL
    assert predictor.path.rstrip("/") == str(dirs["model"])  # the path in init args was overridden
    assert (dirs["model"] / "code" / "serve.py").read_bytes() == (CONTAINER / "serve.py").read_bytes()

    board = pd.read_csv(dirs["output_data"] / "leaderboard.csv")
    assert {"model", "score_val"} <= set(board.columns)
    assert len(board) >= 1

    summary = json.loads((dirs["output_data"] / "training_summary.json").read_text())
    assert summary == json.loads((dirs["model"] / "training_summary.json").read_text())
    assert set(summary) == {
        "predictor_type",
        "label",
        "problem_type",
        "eval_metric",
        "best_model",
        "score_val",
        "autogluon_version",
        "features",
        "class_labels",
        "num_train_rows",
        "num_tuning_rows",
        "fit_seconds",
        "baseline_seconds",
        "model_names",
    }
    assert summary["model_names"] == board["model"].tolist()  # what predict_kwargs' "model" may name
    assert summary["predictor_type"] == "tabular"
    assert summary["label"] == LABEL
    assert summary["problem_type"] == "binary"
    assert summary["eval_metric"] == "accuracy"
    assert summary["best_model"] == predictor.model_best
    assert summary["best_model"] in set(board["model"])
    assert summary["score_val"] == pytest.approx(float(board.set_index("model").loc[predictor.model_best, "score_val"]))
    assert 0.5 < summary["score_val"] <= 1.0
    assert summary["autogluon_version"].startswith("1.")
    assert summary["features"] == FEATURES
    assert summary["class_labels"] == ["no", "yes"]
    assert summary["num_train_rows"] == 240
    assert summary["num_tuning_rows"] == 60
    assert 0 < summary["fit_seconds"] < classification["seconds"]
    # The baseline beside the summary, in the model and in the job's output: the training rows'
    # profile, and the answers on the tuning data (the class and each class's probability).
    statistics = json.loads((dirs["model"] / "statistics.json").read_text())
    assert statistics == json.loads((dirs["output_data"] / "statistics.json").read_text())
    assert [f["name"] for f in statistics["features"]] == FEATURES
    assert statistics["dataset"]["item_count"] == 240
    assert [p["name"] for p in statistics["predictions"]] == [LABEL, "no_proba", "yes_proba"]
    assert statistics["predictions_source"] == "tuning_data"
    assert (dirs["model"] / "constraints.json").is_file()
    assert 0 <= summary["baseline_seconds"] < summary["fit_seconds"]


def test_regression_outputs(regression: dict[str, Any]) -> None:
    summary = json.loads((regression["dirs"]["output_data"] / "training_summary.json").read_text())
    assert summary["problem_type"] == "regression"
    assert summary["label"] == TARGET
    assert summary["class_labels"] is None
    assert summary["num_train_rows"] == 300
    assert summary["num_tuning_rows"] == 0
    statistics = json.loads((regression["dirs"]["model"] / "statistics.json").read_text())
    [answer] = statistics["predictions"]  # the regression output, on its deciles
    assert answer["name"] == TARGET
    assert answer["inferred_type"] == "Fractional"
    assert isinstance(summary["score_val"], float)  # higher is better: an error metric is negated
    assert summary["score_val"] < 0


def _failing_job(tmp_path: Path, case: str) -> dict[str, Path]:
    dirs = sm_layout(tmp_path)
    data = make_frame(50, seed=1).drop(columns=[TARGET])
    if case == "missing_label":
        data.drop(columns=[LABEL]).to_csv(dirs["train"] / "train.csv", index=False)
        write_ag_args(dirs)
    elif case == "empty_data":
        data.iloc[:0].to_csv(dirs["train"] / "train.csv", index=False)
        write_ag_args(dirs)
    elif case == "empty_file":
        (dirs["train"] / "train.csv").write_text("")
        write_ag_args(dirs)
    elif case == "bad_version":
        data.to_csv(dirs["train"] / "train.csv", index=False)
        write_ag_args(dirs, version=2)
    elif case == "bad_predictor_type":
        data.to_csv(dirs["train"] / "train.csv", index=False)
        write_ag_args(dirs, predictor_type="vision")
    elif case == "missing_package":
        data.to_csv(dirs["train"] / "train.csv", index=False)
        write_ag_args(dirs, predictor_type="multimodal")
    elif case == "several_files":
        data.to_csv(dirs["train"] / "a.csv", index=False)
        data.to_csv(dirs["train"] / "b.csv", index=False)
        write_ag_args(dirs)
    elif case == "unknown_extension":
        data.to_csv(dirs["train"] / "train.xlsx", index=False)
        write_ag_args(dirs)
    elif case == "missing_tuning_label":
        data.to_csv(dirs["train"] / "train.csv", index=False)
        data.drop(columns=[LABEL]).to_json(dirs["tuning"] / "tuning.jsonl", orient="records", lines=True)
        write_ag_args(dirs)
    return dirs


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_label", "label column 'churn' not found in train_data; columns are: age, tenure, plan"),
        ("empty_data", "has no rows"),
        ("empty_file", "has no rows"),
        ("bad_version", "version 2 is not supported"),
        ("bad_predictor_type", "unknown predictor_type 'vision'"),
        ("missing_package", "needs the autogluon.multimodal package"),
        ("several_files", "holds 2 files (a.csv, b.csv)"),
        ("unknown_extension", "unsupported file train.xlsx"),
        ("missing_tuning_label", "label column 'churn' not found in tuning_data"),
    ],
)
def test_training_fails_fast_with_a_clear_reason(tmp_path: Path, case: str, expected: str) -> None:
    dirs = _failing_job(tmp_path, case)
    started = time.monotonic()
    proc = run_train(dirs)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert time.monotonic() - started < 60
    reason = (dirs["output"] / "failure").read_text()
    assert reason.startswith("TrainingInputError: ")
    assert expected in reason
    assert "\n" not in reason
    assert len(reason) <= 1000
    assert "Fitting" not in proc.stdout
    assert not (dirs["model"] / "code").exists()
    assert expected in proc.stdout


def test_empty_tuning_channel_means_no_tuning_data(tmp_path: Path) -> None:
    """An empty tuning channel directory (only a hidden file) is no tuning data, not an error."""
    dirs = sm_layout(tmp_path)
    make_frame(50, seed=1).drop(columns=[TARGET, LABEL]).to_csv(dirs["train"] / "train.csv", index=False)
    (dirs["tuning"] / ".keep").write_text("")
    write_ag_args(dirs)
    proc = run_train(dirs)
    assert proc.returncode == 1
    # It got past the tuning channel and failed on the train data's missing label instead.
    assert "label column 'churn' not found in train_data" in (dirs["output"] / "failure").read_text()


# --------------------------------------------------------------------------- serving


@pytest.mark.parametrize("kind", CONTENT_TYPES)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_serve_every_format(served: tuple[ModuleType, Any, Any], rows: pd.DataFrame, kind: str, accept: str) -> None:
    serve, model, predictor = served
    body, content_type = encode_request(kind, rows)
    out, out_type = serve.transform_fn(model, body, content_type, accept)
    assert out_type == (accept if accept not in ("", "*/*") else "application/json")
    answer = decode_answer(out, out_type)

    assert list(answer.columns) == [LABEL, "no_proba", "yes_proba"]
    assert len(answer) == len(rows)
    expected = predictor.predict(rows[FEATURES]).reset_index(drop=True)
    assert answer[LABEL].astype(str).tolist() == expected.astype(str).tolist()
    assert np.allclose(answer[["no_proba", "yes_proba"]].sum(axis=1), 1.0, atol=1e-6)
    proba = predictor.predict_proba(rows[FEATURES]).reset_index(drop=True)
    assert np.allclose(answer["yes_proba"], proba["yes"], atol=1e-6)


@pytest.mark.parametrize(
    "options", [{}, {"decision_threshold": 0.2}, {"decision_threshold": 0.9, "as_multiclass": False}]
)
def test_answers_match_the_predictors_own_labels_and_probabilities(
    served: tuple[ModuleType, Any, Any], rows: pd.DataFrame, options: dict[str, Any]
) -> None:
    """The answer is built from ``predict_proba``'s array: it must give what AutoGluon's own calls give."""
    serve, model, predictor = served
    frame = serve.align(model, rows.copy())
    answer = serve.predict(model, frame, options)
    threshold = options.get("decision_threshold")
    expected = predictor.predict(frame, decision_threshold=threshold).reset_index(drop=True)
    assert answer[LABEL].tolist() == expected.tolist()
    assert answer[LABEL].dtype == expected.dtype
    if threshold is not None:  # the threshold must matter on these rows, or this checks nothing
        assert expected.tolist() != predictor.predict(frame).reset_index(drop=True).tolist()
    proba = predictor.predict_proba(frame, as_multiclass=options.get("as_multiclass", True))
    shown = ["yes"] if options.get("as_multiclass") is False else ["no", "yes"]
    assert list(answer.columns) == [LABEL, *[f"{c}_proba" for c in shown]]
    for cls in shown:
        got = proba if isinstance(proba, pd.Series) else proba[cls]
        assert answer[f"{cls}_proba"].tolist() == got.tolist()


@pytest.fixture(scope="module")
def multiclass_predictor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A small real fit: integer class labels, one model family, so the best model is a weighted
    ensemble of that one model."""
    from autogluon.tabular import TabularPredictor

    data = make_frame(200, seed=3).drop(columns=[TARGET, LABEL])
    data["plan"] = data["plan"].map({"basic": 0, "plus": 1, "pro": 2})
    return TabularPredictor(label="plan", path=str(tmp_path_factory.mktemp("mc") / "m"), verbosity=0).fit(
        data, hyperparameters={"GBM": {"num_boost_round": 20}}, time_limit=30
    )


def test_multiclass_answers_with_integer_labels_match_the_predictor(
    served: tuple[ModuleType, Any, Any], multiclass_predictor: Any
) -> None:
    """Most probable class (first on a tie), labels keeping their integer type; and the best model,
    an ensemble giving all its weight to LightGBM, is scored as LightGBM with the same answers."""
    serve, predictor = served[0], multiclass_predictor
    model = serve.LoadedModel(predictor, "tabular", {})
    assert predictor.model_best == "WeightedEnsemble_L2"
    assert model.scoring_model == "LightGBM"
    data = make_frame(60, seed=5)[["age", "tenure"]]
    frame = serve.align(model, data.copy())
    answer = serve.predict(model, frame)
    expected = predictor.predict(frame).reset_index(drop=True)  # the ensemble, as AutoGluon scores it
    assert answer["plan"].tolist() == expected.tolist()
    assert answer["plan"].dtype == expected.dtype
    assert len(set(expected)) > 1
    proba = predictor.predict_proba(frame)
    for cls in (0, 1, 2):
        assert answer[f"{cls}_proba"].tolist() == proba[cls].tolist()


def test_a_large_request_scores_the_ensemble_as_it_is_without_the_check(
    served: tuple[ModuleType, Any, Any], multiclass_predictor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, predictor = served[0], multiclass_predictor
    model = serve.LoadedModel(predictor, "tabular", {})
    monkeypatch.setattr(serve, "sole_member", lambda *args: pytest.fail("checked for a large request"))
    frame = serve.align(model, make_frame(serve.SOLE_MEMBER_MAX_ROWS + 1, seed=8)[["age", "tenure"]])
    answer = serve.predict(model, frame)
    assert answer["plan"].tolist() == predictor.predict(frame).tolist()


def test_an_ensemble_is_scored_as_its_member_only_when_both_give_the_same_probabilities(
    served: tuple[ModuleType, Any, Any], multiclass_predictor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, predictor = served[0], multiclass_predictor
    real = predictor.predict_proba

    def calibrated_ensemble(data: Any, *args: Any, model: str | None = None, **kwargs: Any) -> Any:
        values = real(data, *args, model=model, **kwargs)
        return values if model else values * 0.999  # as if the ensemble were temperature-scaled

    monkeypatch.setattr(predictor, "predict_proba", calibrated_ensemble)
    assert serve.LoadedModel(predictor, "tabular", {}).scoring_model is None
    monkeypatch.setattr(predictor, "predict_proba", real)
    assert serve.LoadedModel(predictor, "tabular", {}).scoring_model == "LightGBM"
    trainer = predictor._trainer
    needs = trainer.get_minimum_model_set
    monkeypatch.setattr(trainer, "get_minimum_model_set", lambda name: [*needs(name), "XGBoost"])
    assert serve.LoadedModel(predictor, "tabular", {}).scoring_model is None  # built on two models


def test_predict_many_gives_each_request_its_own_answer(
    served: tuple[ModuleType, Any, Any], rows: pd.DataFrame
) -> None:
    serve, model, _ = served
    bodies = [rows.iloc[i : i + n].to_csv(index=False) for i, n in ((0, 1), (1, 5), (6, 3), (9, 20))]
    frames = [serve.prepare(model, body, "text/csv", "application/json")[0] for body in bodies]
    alone = [serve.predict(model, frame) for frame in frames]
    together = serve.predict_many(model, frames)
    assert len(together) == len(frames)
    for single, batched in zip(alone, together, strict=True):
        pd.testing.assert_frame_equal(single, batched)

    # a request the model cannot score does not fail the others scored with it
    bad = frames[1].copy()
    bad["tenure"] = ["not a number"] * len(bad)
    mixed = serve.predict_many(model, [frames[0], bad, frames[2]])
    pd.testing.assert_frame_equal(mixed[0], alone[0])
    assert isinstance(mixed[1], Exception)
    pd.testing.assert_frame_equal(mixed[2], alone[2])


def test_local_endpoint_batches_concurrent_requests_without_mixing_answers(
    served: tuple[ModuleType, Any, Any], rows: pd.DataFrame
) -> None:
    import threading

    from airflow_autogluon_cloud.container.local_endpoint import MicroBatcher

    serve, model, _ = served
    calls: list[int] = []
    original = serve.predict_many

    def counting(model_: Any, frames: list[pd.DataFrame]) -> list[Any]:
        calls.append(len(frames))
        return original(model_, frames)

    module = type("ServeModule", (), {"predict_many": staticmethod(counting)})
    batcher = MicroBatcher(module, model)
    frames = [serve.prepare(model, rows.iloc[[i]].to_csv(index=False), "text/csv", "")[0] for i in range(len(rows))]
    expected = [serve.predict(model, frame) for frame in frames]
    answers: dict[int, Any] = {}
    start = threading.Barrier(16)

    def client(k: int) -> None:
        start.wait()
        for i in range(k, len(frames), 16):
            answers[i] = batcher.submit(frames[i])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == list(range(len(frames)))
    for i, frame in enumerate(expected):
        pd.testing.assert_frame_equal(answers[i], frame)
    assert sum(calls) == len(frames)  # every request scored exactly once
    assert len(calls) < len(frames), "16 concurrent clients never shared a model call"


def test_micro_batching_can_be_switched_off_and_needs_the_split_serving_api(
    served: tuple[ModuleType, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_autogluon_cloud.container.local_endpoint import EndpointServer

    serve, model, _ = served
    on = EndpointServer(("127.0.0.1", 0), "ep", serve, model, 1024)
    monkeypatch.setenv("AG_ENDPOINT_MICRO_BATCHING", "0")
    off = EndpointServer(("127.0.0.1", 0), "ep", serve, model, 1024)
    monkeypatch.delenv("AG_ENDPOINT_MICRO_BATCHING")
    # an older serving script has transform_fn only: served one request at a time
    older = type("OlderServe", (), {"transform_fn": staticmethod(serve.transform_fn)})
    legacy = EndpointServer(("127.0.0.1", 0), "ep", older, model, 1024)
    try:
        assert on.batcher is not None
        assert off.batcher is None
        assert legacy.batcher is None
    finally:
        for server in (on, off, legacy):
            server.server_close()


def test_an_idle_server_polls_a_connection_briefly_and_never_while_a_request_is_scored(
    served: tuple[ModuleType, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import threading

    from airflow_autogluon_cloud.container.local_endpoint import EndpointServer

    serve, model, _ = served
    monkeypatch.setenv("AG_ENDPOINT_POLL_MICROSECONDS", "300000")
    server = EndpointServer(("127.0.0.1", 0), "ep", serve, model, 1024)
    monkeypatch.setenv("AG_ENDPOINT_POLL_MICROSECONDS", "0")
    off = EndpointServer(("127.0.0.1", 0), "ep", serve, model, 1024)
    ours, peer = socket.socketpair()
    try:

        def polled_for() -> float:
            started = time.monotonic()
            server.poll_briefly(ours)
            return time.monotonic() - started

        assert polled_for() >= 0.3  # nothing arrived: polled the whole window, then gave up
        threading.Timer(0.05, peer.sendall, args=(b"POST",)).start()
        assert 0.04 <= polled_for() < 0.25  # back as soon as the next request arrived
        ours.recv(4)
        assert server.admit()  # a request in flight: polling would take the interpreter from it
        assert polled_for() < 0.05
        server.leave()
        started = time.monotonic()
        off.poll_briefly(ours)
        assert time.monotonic() - started < 0.05
    finally:
        ours.close()
        peer.close()
        server.server_close()
        off.server_close()

    for bad in ("fast", "-5", "nan"):
        monkeypatch.setenv("AG_ENDPOINT_POLL_MICROSECONDS", bad)
        with pytest.raises(ValueError, match=rf"AG_ENDPOINT_POLL_MICROSECONDS='{bad}': expected a number"):
            EndpointServer(("127.0.0.1", 0), "ep", serve, model, 1024)


def test_serve_model_fn(served: tuple[ModuleType, Any, Any]) -> None:
    _, model, _ = served
    assert model.predictor_type == "tabular"
    assert model.features == FEATURES
    assert model.label == LABEL
    assert model.can_predict_proba is True


def test_serve_str_and_bytes_bodies_agree(served: tuple[ModuleType, Any, Any], rows: pd.DataFrame) -> None:
    serve, model, _ = served
    text = rows.to_csv(index=False)
    as_text, _ = serve.transform_fn(model, text, "text/csv", "text/csv")
    as_bytes, _ = serve.transform_fn(model, text.encode(), "text/csv", "text/csv")
    as_bytearray, _ = serve.transform_fn(model, bytearray(text.encode()), "text/csv", "text/csv")
    assert as_text == as_bytes == as_bytearray


def test_serve_accepts_json_variants(served: tuple[ModuleType, Any, Any], rows: pd.DataFrame) -> None:
    serve, model, predictor = served
    expected = predictor.predict(rows[FEATURES]).astype(str).tolist()
    bodies = [
        rows.to_json(orient="split", index=False),
        rows.to_json(orient="columns"),
        json.dumps({"instances": rows[FEATURES].to_numpy().tolist()}, default=str),
    ]
    for body in bodies:
        out, _ = serve.transform_fn(model, body, "application/json", "application/json")
        assert pd.DataFrame.from_records(json.loads(out))[LABEL].astype(str).tolist() == expected
    one = json.loads(rows.iloc[:1].to_json(orient="records"))[0]
    out, _ = serve.transform_fn(model, json.dumps(one), "application/json", "application/json")
    assert [r[LABEL] for r in json.loads(out)] == expected[:1]


def test_serve_bad_requests(served: tuple[ModuleType, Any, Any], rows: pd.DataFrame) -> None:
    serve, model, _ = served

    err = bad_request(serve, model, rows.drop(columns=["plan"]).to_csv(index=False), "text/csv")
    assert err.status_code == 400
    assert "missing columns: plan" in str(err)
    err = bad_request(serve, model, rows.drop(columns=["plan", "age"]).to_json(orient="records"), "application/json")
    assert err.status_code == 400
    assert "missing columns: age, plan" in str(err)

    cases = [
        (b"PAR1 this is not parquet at all \x00\x01\x02", "application/x-parquet"),
        ("PAR1 text", "application/x-parquet"),
        (b"", "text/csv"),
        ("", "application/json"),
        ("  \n ", "text/csv"),
        (b"", "application/x-parquet"),
        ("[]", "application/json"),
        ("{not json", "application/json"),
        ('{"instances": 3}', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('{"age": 3}\n{oops', "application/jsonl"),
        (b"\xff\xfe\x00garbage\xff", "text/csv"),
        ("1,2\n3,4\n", "text/csv"),  # headerless with the wrong number of columns
        ('"unterminated\n1,2,3', "text/csv"),
        (rows.iloc[:0].to_csv(index=False), "text/csv"),  # a header and no rows
    ]
    for body, content_type in cases:
        err = bad_request(serve, model, body, content_type)
        assert err.status_code == 400, (body, content_type, err)
        assert str(err)

    err = bad_request(serve, model, rows.to_csv(index=False), "application/xml")
    assert err.status_code == 415
    err = bad_request(serve, model, rows.to_csv(index=False), "text/csv", "application/xml")
    assert err.status_code == 406
    err = bad_request(serve, model, b"", "text/csv", "image/png")
    assert err.status_code == 406


def test_bad_request_error_survives_pickling(served: tuple[ModuleType, Any, Any]) -> None:
    """Batch transform workers send errors back to their parent process."""
    serve, _, _ = served
    sys.modules["ag_serve_clf"] = serve  # as when a worker imported it under that name
    try:
        err = pickle.loads(pickle.dumps(serve.BadRequestError(415, "nope")))
    finally:
        del sys.modules["ag_serve_clf"]
    assert (err.status_code, err.message, err.phrase, str(err)) == (415, "nope", "Unsupported Media Type", "nope")


def test_serve_regression(regression: dict[str, Any], rows: pd.DataFrame) -> None:
    from autogluon.tabular import TabularPredictor

    model_dir = regression["dirs"]["model"]
    serve = load_serve(model_dir, "ag_serve_reg")
    model = serve.model_fn(str(model_dir))
    assert model.can_predict_proba is False
    predictor = TabularPredictor.load(str(model_dir))
    expected = predictor.predict(rows[FEATURES]).to_numpy()
    for accept in ("application/json", "text/csv", "application/x-parquet", "application/jsonl"):
        out, out_type = serve.transform_fn(model, rows.to_csv(index=False), "text/csv", accept)
        answer = decode_answer(out, out_type)
        assert list(answer.columns) == [TARGET]
        assert np.allclose(answer[TARGET].to_numpy(), expected, rtol=1e-5)


# --------------------------------------------------------------------------- multimodal and timeseries
# Neither package is installed here: stand-ins with the same API exercise the scripts' code paths.

STUB_MULTIMODAL = """
import os
import pickle

import pandas as pd


class MultiModalPredictor:
    def __init__(self, label=None, path=None, problem_type=None, **kwargs):
        self.label, self.path, self.problem_type, self.eval_metric = label, path, problem_type, "accuracy"
        self.class_labels = None
        self.standalone = None

    def fit(self, train_data, tuning_data=None, **kwargs):
        assert isinstance(train_data, pd.DataFrame) and "train_data" not in kwargs
        self.class_labels = sorted(train_data[self.label].astype(str).unique())
        self.problem_type = "binary"
        os.makedirs(self.path, exist_ok=True)
        return self

    def save(self, path, standalone=False):
        self.standalone = standalone
        with open(os.path.join(path, "stub.pkl"), "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, path, resume=False, verbosity=3):
        with open(os.path.join(path, "stub.pkl"), "rb") as fh:
            return pickle.load(fh)

    def predict_proba(self, data, as_pandas=None, as_multiclass=True):
        p = (data["tenure"].to_numpy() < 36) * 0.8 + 0.1
        return pd.DataFrame({"no": 1 - p, "yes": p})

    def predict(self, data, as_pandas=None):
        return self.predict_proba(data).idxmax(axis=1)
"""

STUB_TIMESERIES = """
import os
import pickle

import pandas as pd


class TimeSeriesDataFrame(pd.DataFrame):
    @classmethod
    def from_data_frame(cls, df, id_column="item_id", timestamp_column="timestamp"):
        df = df.rename(columns={id_column: "item_id", timestamp_column: "timestamp"})
        df["timestamp"] = pd.to_datetime(df["timestamp"])
        return cls(df.set_index(["item_id", "timestamp"]).sort_index())

    @property
    def num_items(self):  # as AutoGluon's: the serving script sizes its parallelism by it
        return self.index.get_level_values("item_id").nunique()


class _Metric:
    name = "WQL"


class TimeSeriesPredictor:
    model_best = "WeightedEnsemble"

    def __init__(self, target="target", prediction_length=1, path=None, **kwargs):
        self.target, self.prediction_length, self.path = target, prediction_length, path
        self.eval_metric = _Metric()

    def fit(self, train_data, tuning_data=None, **kwargs):
        assert isinstance(train_data, TimeSeriesDataFrame)
        os.makedirs(self.path, exist_ok=True)
        with open(os.path.join(self.path, "stub.pkl"), "wb") as fh:
            pickle.dump(self, fh)
        return self

    def leaderboard(self, silent=False):
        return pd.DataFrame({"model": ["WeightedEnsemble", "Naive"], "score_val": [-0.25, -0.5]})

    @classmethod
    def load(cls, path, require_version_match=True):
        with open(os.path.join(path, "stub.pkl"), "rb") as fh:
            return pickle.load(fh)

    def predict(self, data):
        rows = []
        for item, frame in data.groupby(level="item_id"):
            last = frame.index.get_level_values("timestamp").max()
            value = float(frame[self.target].iloc[-1])
            for step in range(1, self.prediction_length + 1):
                rows.append((item, last + pd.Timedelta(days=step), value, value))
        out = pd.DataFrame(rows, columns=["item_id", "timestamp", "mean", "0.5"])
        return out.set_index(["item_id", "timestamp"])
"""


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stubs")
    for name, source in (("multimodal", STUB_MULTIMODAL), ("timeseries", STUB_TIMESERIES)):
        (root / "autogluon" / name).mkdir(parents=True)
        (root / "autogluon" / name / "__init__.py").write_text(source)
    return root


@pytest.fixture
def stubs_importable(stub_path: Path):
    """The stand-ins importable in this process, for this test only."""
    sys.path.insert(0, str(stub_path))
    yield
    sys.path.remove(str(stub_path))
    for name in [m for m in sys.modules if m.startswith(("autogluon.multimodal", "autogluon.timeseries"))]:
        del sys.modules[name]


def run_train_with_stubs(dirs: dict[str, Path], stub_path: Path) -> subprocess.CompletedProcess[str]:
    old = os.environ.get("PYTHONPATH")
    return run_train(dirs, tuning=False, extra_env={"PYTHONPATH": str(stub_path) + (os.pathsep + old if old else "")})


def test_multimodal_train_and_serve(tmp_path: Path, stub_path: Path, stubs_importable: None) -> None:
    dirs = sm_layout(tmp_path)
    make_frame(60, seed=3).drop(columns=[TARGET]).to_json(dirs["train"] / "train.jsonl", orient="records", lines=True)
    write_ag_args(
        dirs,
        predictor_type="multimodal",
        predictor_fit_args={"time_limit": 10, "train_data": "ignored"},
        leaderboard=False,
    )
    proc = run_train_with_stubs(dirs, stub_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (dirs["output_data"] / "leaderboard.csv").exists()
    summary = json.loads((dirs["model"] / "training_summary.json").read_text())
    assert summary["predictor_type"] == "multimodal"
    assert summary["label"] == LABEL
    assert summary["class_labels"] == ["no", "yes"]
    assert summary["features"] == []
    assert summary["best_model"] is None
    assert summary["score_val"] is None

    serve = load_serve(dirs["model"], "ag_serve_mm")
    model = serve.model_fn(str(dirs["model"]))
    assert model.predictor.standalone is True
    rows = make_frame(5, seed=4)[FEATURES]
    out, out_type = serve.transform_fn(model, rows.to_csv(index=False), "text/csv", "text/csv")
    answer = decode_answer(out, out_type)
    assert list(answer.columns) == [LABEL, "no_proba", "yes_proba"]
    assert answer[LABEL].tolist() == ["yes" if t < 36 else "no" for t in rows["tenure"]]


def test_timeseries_train_and_serve(tmp_path: Path, stub_path: Path, stubs_importable: None) -> None:
    dirs = sm_layout(tmp_path)
    dates = pd.date_range("2024-01-01", periods=20, freq="D")
    data = pd.DataFrame(
        {
            "store": np.repeat(["a", "b"], len(dates)),
            "day": np.tile(dates.strftime("%Y-%m-%d"), 2),
            "sales": np.arange(2 * len(dates), dtype=float),
        }
    )
    data.to_parquet(dirs["train"] / "train.pq", index=False)
    write_ag_args(
        dirs,
        predictor_type="timeseries",
        predictor_init_args={"target": "sales", "prediction_length": 2},
        timeseries={"id_column": "store", "timestamp_column": "day"},
    )
    proc = run_train_with_stubs(dirs, stub_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((dirs["output_data"] / "training_summary.json").read_text())
    assert summary["predictor_type"] == "timeseries"
    assert summary["label"] == "sales"
    assert summary["eval_metric"] == "WQL"
    assert summary["best_model"] == "WeightedEnsemble"
    assert summary["score_val"] == -0.25
    assert summary["class_labels"] is None
    assert summary["problem_type"] == "forecast"
    layout = summary["timeseries"]
    assert {k: layout[k] for k in ("id_column", "timestamp_column", "target", "prediction_length")} == {
        "id_column": "store",
        "timestamp_column": "day",
        "target": "sales",
        "prediction_length": 2,
    }
    assert len(pd.read_csv(dirs["output_data"] / "leaderboard.csv")) == 2

    serve = load_serve(dirs["model"], "ag_serve_ts")
    model = serve.model_fn(str(dirs["model"]))
    out, out_type = serve.transform_fn(model, data.to_json(orient="records"), "application/json", "*/*")
    assert out_type == "application/json"
    answer = pd.DataFrame.from_records(json.loads(out))
    assert list(answer.columns) == ["item_id", "timestamp", "mean", "0.5"]
    assert len(answer) == 4
    assert answer["mean"].tolist() == [19.0, 19.0, 39.0, 39.0]


def test_timeseries_missing_columns_fail_fast(tmp_path: Path, stub_path: Path) -> None:
    dirs = sm_layout(tmp_path)
    pd.DataFrame({"item_id": ["a"], "timestamp": ["2024-01-01"], "sales": [1.0]}).to_csv(
        dirs["train"] / "train.csv", index=False
    )
    write_ag_args(
        dirs, predictor_type="timeseries", predictor_init_args={"target": "sales"}, timeseries={"id_column": "store"}
    )
    proc = run_train_with_stubs(dirs, stub_path)
    assert proc.returncode == 1
    assert "id column 'store' not found in train_data" in (dirs["output"] / "failure").read_text()
