"""AutoGluon serving script (SageMaker inference-toolkit handler contract).

Copied into every model's ``code/`` directory by ``train.py``. The AWS AutoGluon inference
container and this provider's local endpoints and batch jobs all load it the same way:
``model_fn(model_dir)`` once, then ``transform_fn(model, body, content_type, accept)`` per request.
Self-contained: imports only the standard library, pandas (pyarrow for Parquet) and AutoGluon.

Requests (``Content-Type``): ``text/csv`` (with or without a header line), ``application/json``
(an array of records, ``{"instances": [...]}``, or pandas ``split``/``columns`` orient),
``application/jsonl`` (one record per line) and ``application/x-parquet``.

Answers (``Accept``; JSON records when missing or ``*/*``): ``application/json``,
``application/jsonl``, ``text/csv`` or ``application/x-parquet``, holding the prediction in a
column named after the label and, for classifiers, one ``<class>_proba`` column per class.

Prediction options (``decision_threshold`` for binary models, ``model`` from the leaderboard,
``as_multiclass``) come as a JSON object, for every request from the ``AG_PREDICT_KWARGS``
environment variable (a batch transform job's ``Environment``), and per request from SageMaker's
CustomAttributes header (``X-Amzn-SageMaker-Custom-Attributes: ag_predict_kwargs={...}``), which
reaches ``transform_fn`` through its ``context`` argument; other custom attributes are ignored.

Bad requests raise :class:`BadRequestError` with ``status_code`` 400 (bad input or options), 406
(unsupported ``Accept``) or 415 (unsupported ``Content-Type``); they never surface as a 500.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pandas as pd

try:  # In the AWS inference container the toolkit answers this error type with its status code.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ErrorBase
except ImportError:  # outside the container
    _ErrorBase = Exception

CSV = "text/csv"
JSON = "application/json"
JSONL = "application/jsonl"
PARQUET = "application/x-parquet"
#: Other spellings of the same formats.
_ALIASES = {
    "application/jsonlines": JSONL,
    "application/x-jsonlines": JSONL,
    "application/x-ndjson": JSONL,
    "application/parquet": PARQUET,
    "application/vnd.apache.parquet": PARQUET,
}
_FORMATS = (CSV, JSON, JSONL, PARQUET)
_ANY = ("", "*/*")
OPTIONS_ENV = "AG_PREDICT_KWARGS"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTE_KEY = "ag_predict_kwargs"
PREDICT_OPTIONS = ("decision_threshold", "model", "as_multiclass")
#: Requests up to this many rows score a one-model ensemble as its model (see :func:`sole_member`).
SOLE_MEMBER_MAX_ROWS = 500


class BadRequestError(_ErrorBase):
    """A request the model cannot answer; ``status_code`` is 400, 406 or 415."""

    def __init__(self, status_code: int, message: str, phrase: str | None = None) -> None:
        if phrase is None:
            try:
                phrase = HTTPStatus(status_code).phrase
            except ValueError:
                phrase = "Bad Request"
        # (status_code, message, phrase) is the toolkit's signature; these args also make the error
        # picklable (batch transform workers send it back to their parent process).
        super().__init__(status_code, message, phrase)
        self.status_code = status_code
        self.message = message
        self.phrase = phrase

    def __str__(self) -> str:
        return self.message


class LoadedModel:
    """The predictor and what each request needs, computed once by :func:`model_fn`."""

    def __init__(self, predictor: Any, predictor_type: str, summary: dict[str, Any]) -> None:
        self.predictor = predictor
        self.predictor_type = predictor_type
        self.summary = summary
        label = _attr(predictor, "label") or _attr(predictor, "target") or summary.get("label") or "prediction"
        self.label = str(label)
        features = _attr(predictor, "original_features") if predictor_type == "tabular" else None
        if features is None:
            features = summary.get("features") or []
        self.features: list[str] = [str(f) for f in features]
        self.feature_set = frozenset(self.features)
        if predictor_type == "tabular":
            self.can_predict_proba = bool(_attr(predictor, "can_predict_proba"))
        elif predictor_type == "multimodal":
            self.can_predict_proba = summary.get("class_labels") is not None
        else:
            self.can_predict_proba = False
        timeseries = summary.get("timeseries") or {}
        self.id_column = str(timeseries.get("id_column") or "item_id")
        self.timestamp_column = str(timeseries.get("timestamp_column") or "timestamp")
        self.problem_type = str(_attr(predictor, "problem_type") or summary.get("problem_type") or "")
        names = None
        if predictor_type in ("tabular", "timeseries"):
            try:
                names = predictor.model_names()
            except Exception:  # older predictors: the summary may still list them
                names = None
        self.model_names: list[str] = [str(n) for n in (names or summary.get("model_names") or [])]
        #: A tabular classifier's classes as an array (``predict_proba``'s column order, the labels'
        #: own dtype) and its fitted decision threshold: read once, not on every request.
        self.class_labels: list[Any] = []
        self.class_array: Any = None
        self.decision_threshold: float | None = None
        if predictor_type == "tabular" and self.can_predict_proba:
            self.class_labels = list(_attr(predictor, "class_labels") or [])
            self.class_array = pd.Index(self.class_labels).to_numpy()
            if self.problem_type == "binary":
                self.decision_threshold = float(_attr(predictor, "decision_threshold") or 0.5)
        #: Options for every request (a batch transform's environment); a request's own add to them.
        self.default_options = check_options(self, _json_env(OPTIONS_ENV), OPTIONS_ENV)
        self._scoring_model: str | None | bool = False  # not decided yet

    @property
    def scoring_model(self) -> str | None:
        """The model scored when a request names none (see :func:`sole_member`); ``None``: the best.

        Decided on the first small request, not at load: the check predicts, and a batch transform
        forks its workers after loading, before anything may start OpenMP's threads (which a fork
        breaks).
        """
        if self._scoring_model is False:
            self._scoring_model = (
                sole_member(self.predictor, self.features) if self.predictor_type == "tabular" else None
            )
        return self._scoring_model if isinstance(self._scoring_model, str) else None

    def __repr__(self) -> str:
        return f"LoadedModel({self.predictor_type}, label={self.label!r}, {len(self.features)} features)"


def _probe_rows(predictor: Any, features: list[str]) -> pd.DataFrame:
    """Two made-up rows of the training columns' raw types (numbers, text, flags)."""
    types = dict(predictor.feature_metadata_in.type_map_raw)
    values = {"int": [0, 3], "float": [0.0, 2.5], "bool": [False, True], "datetime": ["2020-01-01", "2021-06-30"]}
    frame = pd.DataFrame({f: values.get(str(types.get(f)), ["", "a"]) for f in features})
    for f in features:
        if types.get(f) == "datetime":
            frame[f] = pd.to_datetime(frame[f])
    return frame


def sole_member(predictor: Any, features: list[str]) -> str | None:
    """The one model the best model, a weighted ensemble, is built on; else ``None``.

    Such an ensemble's probabilities are that model's times its weight, 1.0, so scoring the model
    alone gives the same answers without the stacking step: about a tenth of a 1-row request's
    cost. AutoGluon often ends up with one on a small table. Taken only when the ensemble needs
    exactly one other model and both give bit-identical answers on probe rows (an ensemble may
    also be calibrated, for example). The trainer's model graph is read directly: the public
    ``model_info`` measures model sizes with two full garbage collections, 0.2 s.
    """
    try:
        best = predictor.model_best
        trainer = predictor._trainer
        members = [m for m in trainer.get_minimum_model_set(best) if m != best]
        if len(members) != 1 or "WeightedEnsemble" not in getattr(
            trainer.get_model_attribute(best, "type"), "__name__", ""
        ):
            return None
        probe = _probe_rows(predictor, features)
        if predictor.can_predict_proba:
            ensemble = predictor.predict_proba(probe, as_pandas=False, as_multiclass=True)
            alone = predictor.predict_proba(probe, as_pandas=False, as_multiclass=True, model=members[0])
        else:
            ensemble = predictor.predict(probe, as_pandas=False)
            alone = predictor.predict(probe, as_pandas=False, model=members[0])
        if not (ensemble.shape == alone.shape and (ensemble == alone).all()):
            return None
    except Exception:  # anything unexpected (another AutoGluon version): score the best model as it is
        return None
    print(f"Scoring {best} as {members[0]}, the only model it is built on (same answers, checked)", flush=True)
    return str(members[0])


def _json_env(name: str) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadRequestError(400, f"{name} is not valid JSON: {err}") from None


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # some predictor properties raise when they do not apply
        return None


def media_type(value: str | None) -> str:
    """``"Text/CSV; charset=utf-8"`` -> ``"text/csv"``."""
    return (value or "").split(";", 1)[0].strip().lower()


def _format(value: str | None) -> str:
    kind = media_type(value)
    return _ALIASES.get(kind, kind)


# --------------------------------------------------------------------------- loading


def _load(predictor_cls: Any, model_dir: str) -> Any:
    """``predictor_cls.load``, tolerating a Python minor version change where the class allows it."""
    import inspect

    try:
        accepts = "require_py_version_match" in inspect.signature(predictor_cls.load).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        return predictor_cls.load(model_dir, require_py_version_match=False)
    return predictor_cls.load(model_dir)


def model_fn(model_dir: str) -> LoadedModel:
    """Load the predictor once; called by the model server before the first request."""
    path = Path(model_dir)
    summary_path = path / "training_summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    predictor_type = str(summary.get("predictor_type") or "tabular")
    print(f"Loading {predictor_type} predictor from {model_dir}", flush=True)
    if predictor_type == "timeseries":
        from autogluon.timeseries import TimeSeriesPredictor

        predictor = _load(TimeSeriesPredictor, str(model_dir))
    elif predictor_type == "multimodal":
        from autogluon.multimodal import MultiModalPredictor

        predictor = _load(MultiModalPredictor, str(model_dir))
    else:
        from autogluon.tabular import TabularPredictor

        predictor = TabularPredictor.load(str(model_dir), require_py_version_match=False)
        try:
            predictor.persist()  # keep the models in memory: no disk reads per request
        except Exception as err:  # an optimisation only
            print(f"Could not persist the models in memory ({type(err).__name__}: {err}); continuing", flush=True)
    model = LoadedModel(predictor, predictor_type, summary)
    print(f"Loaded {model!r}", flush=True)
    return model


# --------------------------------------------------------------------------- requests


def _is_empty(body: Any) -> bool:
    if body is None:
        return True
    if isinstance(body, str):
        return not body.strip()
    if isinstance(body, (bytes, bytearray)):
        return not body or body.isspace()
    if isinstance(body, memoryview):
        return _is_empty(body.tobytes())
    if isinstance(body, (list, dict)):
        return not body
    return False


def _text(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            return bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise BadRequestError(400, f"the request body is not UTF-8 text: {err}") from None
    if isinstance(body, (list, dict)):  # a server that already decoded the JSON body
        return json.dumps(body)
    raise BadRequestError(400, f"cannot read a request body of type {type(body).__name__}")


def _first_row(text: str) -> list[str]:
    line = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    try:
        return [value.strip() for value in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return []


def _parse_csv(model: LoadedModel, text: str) -> pd.DataFrame:
    first = _first_row(text)
    # A first row naming any feature is a header: a header lacking some features is then answered
    # with "missing columns" rather than read as a row of data.
    has_header = not model.feature_set or any(value in model.feature_set for value in first)
    try:
        if has_header:
            return pd.read_csv(io.StringIO(text), skip_blank_lines=True)
        frame = pd.read_csv(io.StringIO(text), header=None, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as err:
        raise BadRequestError(400, f"could not parse the CSV body: {' '.join(str(err).split())}") from None
    if len(frame.columns) != len(model.features):
        expected = ", ".join(model.features)
        extra = ""
        if len(frame.columns) == len(model.features) + 1:
            extra = f" (does it include the label column {model.label!r}? send it with a header line, or without it)"
        raise BadRequestError(
            400,
            f"the CSV body has no header line naming the model's features and {len(frame.columns)} columns; "
            f"send a header line, or exactly {len(model.features)} columns in this order: {expected}{extra}",
        )
    frame.columns = model.features
    return frame


# A few rows of plain CSV (what a real-time client sends) are read without pandas' CSV reader, whose
# set-up costs more than scoring one row. The reader below gives exactly the frame that
# ``align(model, pd.read_csv(...))`` gives, or ``None`` whenever it cannot be sure of that (quotes,
# padded values, ragged rows, numbers pandas would round differently...), and then the request
# takes the general path: same answers, same errors.
FAST_CSV_MAX_LINES = 128
#: pandas' default missing-value strings (``pandas._libs.parsers.STR_NA_VALUES``).
_NA_TOKENS = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>")
    + ("N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
)
_TRUE_TOKENS = frozenset(("True", "TRUE", "true"))
_FALSE_TOKENS = frozenset(("False", "FALSE", "false"))
_INF_TOKENS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
_INF_TOKENS.update({k.replace("inf", "infinity"): v for k, v in _INF_TOKENS.items()})
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_NUMBERISH = re.compile(r"[0-9.eE+-]+")
_NA, _INT, _FLOAT, _BOOL, _STR = range(5)


def _token_kind(token: str) -> int:
    """What pandas' C reader makes of one CSV value; raises ``ValueError`` when unsure."""
    if token in _NA_TOKENS:
        return _NA
    if _INT_RE.fullmatch(token):
        return _INT
    match = _FLOAT_RE.fullmatch(token)
    if match and (match[1] or match[2]):
        # pandas' parser equals float() for at most 15 digits scaled by at most 1e22 (both exact
        # in a double, one correctly rounded operation); beyond that it may differ in the last bit.
        digits = len(match[1]) + len(match[2] or "")
        scale = int(match[3] or 0) - len(match[2] or "")
        if digits <= 15 and -22 <= scale <= 22:
            return _FLOAT
        raise ValueError(token)
    if token in _TRUE_TOKENS or token in _FALSE_TOKENS:
        return _BOOL
    if token.lower() in _INF_TOKENS:
        return _FLOAT
    if token != token.strip() or _NUMBERISH.fullmatch(token):
        raise ValueError(token)  # padded values and number-like oddities: pandas decides
    return _STR


def _fast_column(tokens: list[str]) -> Any:
    """One column as pandas' C reader would type it, or ``ValueError``."""
    import numpy as np

    kinds = {_token_kind(t) for t in tokens}
    if kinds == {_INT}:
        return np.array([int(t) for t in tokens], dtype=np.int64)
    if kinds <= {_INT, _FLOAT, _NA}:
        return np.array(
            [math.nan if t in _NA_TOKENS else _INF_TOKENS.get(t.lower()) or float(t) for t in tokens],
            dtype=np.float64,
        )
    if kinds == {_BOOL}:
        return np.array([t in _TRUE_TOKENS for t in tokens], dtype=bool)
    if _STR not in kinds:
        raise ValueError("booleans mixed with numbers or missing values")
    return np.array([math.nan if t in _NA_TOKENS else t for t in tokens], dtype=object)


def fast_csv_frame(model: LoadedModel, body: Any, content_type: str | None) -> pd.DataFrame | None:
    """A small plain CSV body as the aligned frame the general path would give; ``None`` to use that path."""
    if model.predictor_type != "tabular" or not model.features or _format(content_type) not in (CSV, ""):
        return None
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    elif isinstance(body, str):
        text = body
    else:
        return None
    if '"' in text or text.count("\n") > FAST_CSV_MAX_LINES:
        return None
    rows = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            return None
        if line:
            rows.append(line.split(","))
    if not rows:
        return None
    first = [value.strip() for value in rows[0]]
    if any(value in model.feature_set for value in first):  # a header line, as _parse_csv decides
        if len(set(first)) != len(first):
            return None
        positions = {name: i for i, name in enumerate(first)}
        if any(f not in positions for f in model.features):
            return None  # the general path names the missing columns
        width, rows = len(first), rows[1:]
        where = [positions[f] for f in model.features]
    else:
        width, where = len(model.features), list(range(len(model.features)))
    if not rows or any(len(row) != width for row in rows):
        return None
    try:
        columns = {f: _fast_column([row[i] for row in rows]) for f, i in zip(model.features, where, strict=True)}
    except ValueError:
        return None
    return pd.DataFrame(columns, copy=False)  # fresh arrays: nothing to copy


def _records_frame(model: LoadedModel, records: list[Any]) -> pd.DataFrame:
    if records and all(isinstance(r, (list, tuple)) for r in records):
        # Positional rows ({"instances": [[...], ...]}): the features in training order.
        if model.features and all(len(r) == len(model.features) for r in records):
            return pd.DataFrame.from_records(records, columns=model.features)
        raise BadRequestError(
            400,
            f"rows given as arrays must each hold exactly {len(model.features)} values, in this order: "
            f"{', '.join(model.features)}; or send records (objects) keyed by column name",
        )
    if not all(isinstance(r, dict) for r in records):
        raise BadRequestError(400, "every record must be a JSON object keyed by column name")
    return pd.DataFrame.from_records(records)


def _parse_json_payload(model: LoadedModel, payload: Any) -> pd.DataFrame:
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
        if not isinstance(payload, list):
            raise BadRequestError(400, '"instances" must be a JSON array of records')
    if isinstance(payload, list):
        return _records_frame(model, payload)
    if isinstance(payload, dict):
        if "columns" in payload and "data" in payload:  # pandas orient="split"
            return pd.DataFrame(payload["data"], columns=payload["columns"])
        if payload and all(isinstance(v, dict) for v in payload.values()):  # pandas orient="columns"
            return pd.DataFrame(payload)
        if payload and all(isinstance(v, list) for v in payload.values()):  # {column: [values]}
            return pd.DataFrame(payload)
        if not any(isinstance(v, (dict, list)) for v in payload.values()):  # one record
            return pd.DataFrame.from_records([payload])
    raise BadRequestError(
        400, 'expected a JSON array of records, {"instances": [...]}, or a pandas "split" or "columns" object'
    )


def _parse_json(model: LoadedModel, body: Any) -> pd.DataFrame:
    if isinstance(body, (list, dict)):
        payload = body
    else:
        try:
            payload = json.loads(_text(body))
        except (json.JSONDecodeError, RecursionError) as err:  # RecursionError: nested too deep
            raise BadRequestError(400, f"the body is not valid JSON: {err}") from None
    return _parse_json_payload(model, payload)


def _parse_jsonl(model: LoadedModel, body: Any) -> pd.DataFrame:
    records = []
    for number, line in enumerate(_text(body).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as err:  # RecursionError: nested too deep
            raise BadRequestError(400, f"line {number} of the JSON lines body is not valid JSON: {err}") from None
    return _records_frame(model, records)


def _parse_parquet(body: Any) -> pd.DataFrame:
    if isinstance(body, str):
        raise BadRequestError(400, "a Parquet body must be sent as bytes")
    try:
        return pd.read_parquet(io.BytesIO(bytes(body)))
    except ImportError as err:
        raise BadRequestError(415, f"Parquet is not supported by this container ({err}); send CSV or JSON") from None
    except Exception as err:
        raise BadRequestError(400, f"could not read the Parquet body: {type(err).__name__}: {err}") from None


def parse(model: LoadedModel, body: Any, content_type: str | None) -> pd.DataFrame:
    """The request as a data frame, or :class:`BadRequestError`."""
    kind = _format(content_type) or CSV
    if kind not in _FORMATS:
        raise BadRequestError(415, f"unsupported content type {content_type!r}; send one of: {', '.join(_FORMATS)}")
    if _is_empty(body):
        raise BadRequestError(400, "the request body is empty")
    try:
        if kind == CSV:
            return _parse_csv(model, _text(body))
        if kind == JSON:
            return _parse_json(model, body)
        if kind == JSONL:
            return _parse_jsonl(model, body)
        return _parse_parquet(body)
    except BadRequestError:
        raise
    except Exception as err:  # whatever else a malformed body can raise is still the request's fault
        raise BadRequestError(400, f"could not read the {kind} body: {type(err).__name__}: {err}") from None


def align(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's features, in training order; extra columns are dropped."""
    if len(frame) == 0:
        raise BadRequestError(400, "the request has no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.columns.has_duplicates:
        frame = frame.loc[:, ~frame.columns.duplicated()]
    if not model.features:
        return frame.reset_index(drop=True)
    missing = [f for f in model.features if f not in frame.columns]
    if missing:
        raise BadRequestError(400, f"missing columns: {', '.join(missing)} (expected: {', '.join(model.features)})")
    return frame[model.features].reset_index(drop=True)


# --------------------------------------------------------------------------- prediction options


def check_options(model: LoadedModel, raw: Any, source: str) -> dict[str, Any]:
    """Prediction options checked against the allowed list and this model; 400 names the option."""
    if not isinstance(raw, dict):
        raise BadRequestError(400, f"prediction options ({source}) must be a JSON object, not {type(raw).__name__}")
    classifier = model.problem_type in ("binary", "multiclass")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"prediction option {key!r} ({source})"
        if key not in PREDICT_OPTIONS:
            raise BadRequestError(400, f"unknown {where}; allowed: {', '.join(PREDICT_OPTIONS)}")
        if model.predictor_type == "multimodal" or (model.predictor_type == "timeseries" and key != "model"):
            raise BadRequestError(400, f"{where} does not apply to a {model.predictor_type} model")
        if key == "decision_threshold":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise BadRequestError(400, f"{where} must be a number between 0 and 1, not {value!r}")
            if model.problem_type != "binary":
                raise BadRequestError(400, f"{where} applies to binary models only; this one is {model.problem_type}")
            options[key] = float(value)
        elif key == "model":
            if not isinstance(value, str) or (model.model_names and value not in model.model_names):
                known = ", ".join(model.model_names) or "?"
                raise BadRequestError(400, f"{where}: no model {value!r}; the leaderboard has: {known}")
            options[key] = value
        else:
            if not isinstance(value, bool):
                raise BadRequestError(400, f"{where} must be true or false, not {value!r}")
            if not classifier:
                raise BadRequestError(400, f"{where} applies to classifiers only; this one is {model.problem_type}")
            options[key] = value
    return options


def _request_header(context: Any, name: str) -> str | None:
    """A request header from the model server's context (MMS/TorchServe, or the local endpoint's)."""
    if context is None:
        return None
    value: Any = None
    getter = getattr(context, "get_request_header", None)
    if callable(getter):
        for key in (name, name.lower()):
            try:
                value = getter(0, key)
            except Exception:
                value = None
            if value:
                break
    if not value:
        try:  # older multi-model-server contexts
            value = context.request_processor[0].get_request_property(name.lower())
        except Exception:
            value = None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    return str(value) if value else None


def options_from_attributes(model: LoadedModel, attributes: str | None) -> dict[str, Any] | None:
    """The options in a CustomAttributes value (``ag_predict_kwargs={...}``); ``None`` if it has none."""
    if not attributes:
        return None
    start = attributes.find(CUSTOM_ATTRIBUTE_KEY + "=")
    if start < 0:
        return None  # other custom attributes are the caller's business
    try:
        raw, _ = json.JSONDecoder().raw_decode(attributes, start + len(CUSTOM_ATTRIBUTE_KEY) + 1)
    except (json.JSONDecodeError, RecursionError) as err:  # RecursionError: nested too deep
        message = f"{CUSTOM_ATTRIBUTE_KEY} in the CustomAttributes header is not JSON: {err}"
        raise BadRequestError(400, message) from None
    return check_options(model, raw, "CustomAttributes header")


def request_options(model: LoadedModel, context: Any) -> dict[str, Any]:
    """The options for one request: the model's defaults, updated by the request's own."""
    own = options_from_attributes(model, _request_header(context, CUSTOM_ATTRIBUTES_HEADER))
    return model.default_options if own is None else {**model.default_options, **own}


# --------------------------------------------------------------------------- predictions


def _with_proba(label: str, pred: Any, proba: pd.DataFrame) -> pd.DataFrame:
    columns = {label: pd.Series(pred).to_numpy()}
    for cls in proba.columns:
        columns[f"{cls}_proba"] = proba[cls].to_numpy()
    return pd.DataFrame(columns)


def _classified(model: LoadedModel, values: Any, options: dict[str, Any]) -> pd.DataFrame:
    """The answer frame from ``predict_proba``'s array, with the labels ``predict`` would give.

    As AutoGluon decides: in a binary problem the positive class (the second) wins when its
    probability is above the decision threshold (the fitted one unless the request gives one);
    otherwise the most probable class, the first on a tie.
    """
    if model.problem_type == "binary":
        threshold = options.get("decision_threshold")
        threshold = model.decision_threshold if threshold is None else threshold
        winners = (values[:, 1] > threshold).astype("intp")
    else:
        winners = values.argmax(axis=1)
    columns = {model.label: model.class_array[winners]}
    shown = range(len(model.class_labels))
    if model.problem_type == "binary" and options.get("as_multiclass") is False:
        shown = range(1, 2)  # only the positive class, as AutoGluon's as_multiclass=False
    for i in shown:
        columns[f"{model.class_labels[i]}_proba"] = values[:, i]
    return pd.DataFrame(columns, copy=False)


def predict(model: LoadedModel, frame: pd.DataFrame, options: dict[str, Any] | None = None) -> pd.DataFrame:
    """The answer frame: the prediction named after the label, then ``<class>_proba`` columns.

    :param options: checked prediction options (default: the model's, from ``AG_PREDICT_KWARGS``).
    """
    predictor = model.predictor
    options = model.default_options if options is None else options
    # The stacking step a one-model ensemble skips matters on small requests only; a large one
    # (a batch mini-batch) scores the ensemble as it is and never pays for the check.
    name = options.get("model") or (model.scoring_model if len(frame) <= SOLE_MEMBER_MAX_ROWS else None)
    chosen = {"model": name} if name else {}
    try:
        if model.predictor_type == "timeseries":
            from autogluon.timeseries import TimeSeriesDataFrame

            data = TimeSeriesDataFrame.from_data_frame(
                frame, id_column=model.id_column, timestamp_column=model.timestamp_column
            )
            return predictor.predict(data, **chosen).reset_index()
        if model.predictor_type == "multimodal":
            if model.can_predict_proba:
                proba = predictor.predict_proba(frame, as_pandas=True, as_multiclass=True)
                return _with_proba(model.label, proba.idxmax(axis=1), proba)
            return pd.DataFrame({model.label: pd.Series(predictor.predict(frame, as_pandas=True)).to_numpy()})
        if model.can_predict_proba:
            # Asked for as NumPy (columns in class_labels order), AutoGluon skips copying the request's
            # index; the answer is then built from the arrays, without the frames predict() would make.
            values = predictor.predict_proba(frame, as_pandas=False, as_multiclass=True, **chosen)
            return _classified(model, values, options)
        return pd.DataFrame({model.label: pd.Series(predictor.predict(frame, **chosen)).to_numpy()})
    except (KeyError, ValueError, TypeError) as err:
        # Wrong types or values the model cannot take: the request's fault, not the server's.
        message = " ".join(str(err).split())
        raise BadRequestError(400, f"the model could not score these rows: {type(err).__name__}: {message}") from None


# --------------------------------------------------------------------------- answers


def _answer_type(accept: str | None) -> str:
    kind = media_type(accept)
    if kind in _ANY:
        kind = media_type(os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")) or JSON
        if kind in _ANY:
            kind = JSON
    if _ALIASES.get(kind, kind) not in _FORMATS:
        raise BadRequestError(406, f"unsupported Accept type {accept!r}; ask for one of: {', '.join(_FORMATS)}")
    return kind


def encode(frame: pd.DataFrame, kind: str) -> bytes | str:
    """``frame`` in the answer media type ``kind`` (already checked by :func:`_answer_type`)."""
    fmt = _ALIASES.get(kind, kind)
    if fmt == JSON:
        return frame.to_json(orient="records", date_format="iso")
    if fmt == JSONL:
        text = frame.to_json(orient="records", lines=True, date_format="iso")
        return text if text.endswith("\n") else text + "\n"
    if fmt == CSV:
        return frame.to_csv(index=False)
    buf = io.BytesIO()
    frame.columns = [str(c) for c in frame.columns]
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def prepare(model: LoadedModel, request_body: Any, content_type: str, accept: str) -> tuple[pd.DataFrame, str]:
    """A request's rows, aligned to the model, and the answer type; :class:`BadRequestError` if bad."""
    kind = _answer_type(accept)  # fail fast: before parsing or predicting
    frame = fast_csv_frame(model, request_body, content_type)
    if frame is None:
        frame = align(model, parse(model, request_body, content_type))
    return frame, kind


def predict_many(model: LoadedModel, frames: list[pd.DataFrame]) -> list[pd.DataFrame | Exception]:
    """Score several requests' rows with as few model calls as possible; one answer per request.

    The local endpoint hands concurrent requests over together. A tabular model scores rows
    independently, so requests whose columns have the same types are scored in one call on
    their concatenated rows, which gives each the answer it would get alone at a fraction of
    the per-call overhead. If a combined call fails, its requests are scored one by one, so one
    bad request cannot fail the others.
    """
    answers: list[pd.DataFrame | Exception | None] = [None] * len(frames)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, frame in enumerate(frames):
        key = tuple(str(t) for t in frame.dtypes) if model.predictor_type == "tabular" else (f"#{i}",)
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        if len(members) > 1:
            try:
                combined = predict(model, pd.concat([frames[i] for i in members], ignore_index=True))
            except Exception:
                pass  # scored one by one below
            else:
                start = 0
                for i in members:
                    answers[i] = combined.iloc[start : start + len(frames[i])].reset_index(drop=True)
                    start += len(frames[i])
                continue
        for i in members:
            try:
                answers[i] = predict(model, frames[i])
            except Exception as err:
                answers[i] = err
    return [a if a is not None else RuntimeError("no answer") for a in answers]


def transform_fn(
    model: LoadedModel, request_body: Any, content_type: str, accept: str, context: Any = None
) -> tuple[bytes | str, str]:
    """Answer one request: ``(body, content type)``.

    :param context: the model server's request context (the inference toolkit passes it to a
        ``transform_fn`` that takes five arguments); its CustomAttributes header may carry options.
    """
    options = request_options(model, context)
    frame, kind = prepare(model, request_body, content_type, accept)
    return encode(predict(model, frame, options), kind), kind
