"""serve.py's fast reader for small CSV bodies gives exactly the frame the general path gives.

The real-time path reads a few rows of plain CSV without pandas' CSV reader (its set-up costs more
than scoring one row). Whatever the fast reader accepts must come out identical, dtypes included,
to ``align(model, parse(model, body))``, and whatever it is unsure of must go down the general path,
which keeps every answer and every 4xx the same. No AutoGluon here: a stand-in predictor is enough.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

SERVE = Path(__file__).resolve().parents[2] / "airflow_autogluon_cloud" / "container" / "serve.py"
FEATURES = ["tenure", "charges", "plan", "autopay", "note"]


@pytest.fixture(scope="module")
def serve() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serve_fast_csv_under_test", SERVE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandInPredictor:
    label = "churn"
    original_features = FEATURES
    can_predict_proba = True
    problem_type = "binary"
    class_labels = ["no", "yes"]

    def model_names(self) -> list[str]:
        return ["GBM"]


@pytest.fixture(scope="module")
def model(serve: ModuleType) -> Any:
    return serve.LoadedModel(StandInPredictor(), "tabular", {})


def general(serve: ModuleType, model: Any, body: Any) -> pd.DataFrame:
    return serve.align(model, serve.parse(model, body, "text/csv"))


def assert_same(serve: ModuleType, model: Any, body: Any) -> bool:
    """Fast and general path agree (or the fast path declines); returns whether it was taken."""
    fast = serve.fast_csv_frame(model, body, "text/csv")
    try:
        expected = general(serve, model, body)
    except serve.BadRequestError:
        assert fast is None, body  # a bad body is never read by the fast path
        return False
    if fast is None:
        return False
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)
    assert [str(t) for t in fast.dtypes] == [str(t) for t in expected.dtypes]
    return True


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "tenure": [rng.randint(0, 72) for _ in range(rows)],
            "charges": [round(rng.uniform(10, 120), 2) for _ in range(rows)],
            "plan": [rng.choice(["basic", "plus", "pro"]) for _ in range(rows)],
            "autopay": [rng.choice([True, False]) for _ in range(rows)],
            "note": [rng.choice(["a", "b c", "x-y"]) for _ in range(rows)],
        }
    )


@pytest.mark.parametrize("rows", [1, 3, 100])
@pytest.mark.parametrize(
    "layout",
    ["header", "no_header", "index_column", "reordered_extra_column", "crlf", "bytes_bom", "blank_lines"],
)
def test_client_bodies_take_the_fast_path_and_match(serve: ModuleType, model: Any, rows: int, layout: str) -> None:
    data = frame(rows, seed=rows)
    if layout == "header":
        body: Any = data.to_csv(index=False)
    elif layout == "no_header":
        body = data.to_csv(index=False, header=False)
    elif layout == "index_column":  # the seed's client: DataFrame.to_csv() with its index
        body = data.to_csv()
    elif layout == "reordered_extra_column":
        body = data.assign(extra=1)[["extra", *reversed(FEATURES)]].to_csv(index=False)
    elif layout == "crlf":
        body = data.to_csv(index=False, lineterminator="\r\n")
    elif layout == "bytes_bom":
        body = "\ufeff".encode() + data.to_csv(index=False).encode()
    else:
        body = "\n\n" + data.to_csv(index=False).replace("\n", "\n\n", 1) + "\n"
    assert assert_same(serve, model, body), "expected the fast path to read this body"
    assert assert_same(serve, model, body.encode() if isinstance(body, str) else body)


TOKENS = [
    # numbers pandas and float() agree on, and ones they may not (those must fall back)
    "0", "-0", "+5", "007", "42", "123456789012345678", "1234567890123456789", "12345678901234567890",
    "1.5", "-2.25", "1.", ".5", "+.5e-3", "1e5", "1E-5", "84606e23", "6200e-24", "0.1234567890123456",
    "000403613541.922079", "9.474996311614687", "inf", "-Infinity", "INF", "+inf",
    # missing values, booleans, strings, and look-alikes
    "", "NA", "nan", "NaN", "null", "None", "N/A", "#N/A", "<NA>", "-nan",
    "True", "false", "TRUE", "t", "yes",
    "abc", "b c", "x-y", "1_000", "0x10", "5e", "e5", "-", ".", "1/2/2020", " 5", "5 ", " abc", "\u0661\u0662",
]  # fmt: skip


def test_random_values_agree_with_pandas_or_fall_back(serve: ModuleType, model: Any) -> None:
    rng = random.Random(15)
    taken = 0
    for _ in range(3000):
        rows = rng.choice([1, 1, 2, 3, 7])
        header = rng.random() < 0.6
        # most columns keep one kind of value, so whole typed columns get through the fast path too
        pools = [rng.sample(TOKENS, rng.choice([1, 2, 3])) for _ in FEATURES]
        lines = [",".join(FEATURES)] if header else []
        lines += [",".join(rng.choice(pool) for pool in pools) for _ in range(rows)]
        taken += assert_same(serve, model, "\n".join(lines) + rng.choice(["", "\n"]))
    assert taken > 300, f"the fast path read only {taken} of 3000 bodies"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n\n",
        ",".join(FEATURES) + "\n",  # a header and no rows
        "1,2,3\n4,5,6\n",  # neither a header nor every feature
        ",".join(FEATURES[:-1]) + "\n1,2.0,basic,True\n",  # a header lacking a feature
        ",".join(FEATURES) + "\n1,2.0,basic,True\n",  # a short row
        ",".join(FEATURES) + "\n1,2.0,basic,True,a,extra\n",  # a long row (pandas reads an index)
        ",".join(FEATURES) + ",plan\n1,2.0,basic,True,a,pro\n",  # a repeated column
        '"tenure",charges,plan,autopay,note\n1,2.0,basic,True,a\n',  # quotes
        ",".join(FEATURES) + "\r1,2.0,basic,True,a\r",  # bare carriage returns
        b"\xff\xfe\xfa",  # not UTF-8
        "1,2.0,basic,True,a,label\n",  # the label column without a header
    ],
)
def test_bodies_it_cannot_be_sure_of_take_the_general_path(serve: ModuleType, model: Any, body: Any) -> None:
    assert serve.fast_csv_frame(model, body, "text/csv") is None
    assert_same(serve, model, body)


def test_other_content_types_and_large_bodies_are_left_alone(serve: ModuleType, model: Any) -> None:
    small = frame(2, seed=1).to_csv(index=False)
    assert serve.fast_csv_frame(model, small, "text/csv; charset=utf-8") is not None
    assert serve.fast_csv_frame(model, small, "application/json") is None
    large = frame(serve.FAST_CSV_MAX_LINES + 5, seed=2).to_csv(index=False)
    assert serve.fast_csv_frame(model, large, "text/csv") is None


def test_prepare_gives_the_same_frame_and_the_same_errors(serve: ModuleType, model: Any) -> None:
    body = frame(4, seed=3).to_csv()
    fast, kind = serve.prepare(model, body, "text/csv", "application/json")
    pd.testing.assert_frame_equal(fast, general(serve, model, body), check_exact=True)
    assert kind == "application/json"
    with pytest.raises(serve.BadRequestError) as err:
        serve.prepare(model, "1,2,3\n", "text/csv", "application/json")
    assert err.value.status_code == 400
    assert "exactly 5 columns" in str(err.value)
    with pytest.raises(serve.BadRequestError) as err:
        serve.prepare(model, body, "text/csv", "image/png")
    assert err.value.status_code == 406
