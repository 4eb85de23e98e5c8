"""AutoGluon serving script (SageMaker inference-toolkit handler contract).

Copied into every model's ``code/`` directory by ``train.py``, with the predictor-kind modules it
imports (``ag_kinds.py``, ``kind_*.py``, ``fast_csv.py``, ``data_profile.py``). The AWS AutoGluon inference
container and this provider's local endpoints and batch jobs all load it the same way:
``model_fn(model_dir)`` once, then ``transform_fn(model, body, content_type, accept)`` per request.
Self-contained: the standard library, those modules, pandas (pyarrow for Parquet) and AutoGluon.
With ``AG_DATA_PROFILE_URI`` set (a batch job) each request is profiled as scored (``data_profile.py``).

Requests (``Content-Type``): ``text/csv`` (header line optional), ``application/json`` (records,
``{"instances": [...]}``, pandas ``split``/``columns``), ``application/jsonl``, ``application/x-parquet``.

Answers (``Accept``; JSON records when missing or ``*/*``): the same four formats, holding the
prediction in a column named after the label and, for classifiers, one ``<class>_proba`` column
per class; a time-series model answers its forecast (see ``kind_timeseries.py`` for its requests).

Prediction options (``decision_threshold``, ``model``, ``as_multiclass``: a JSON object) come from
``AG_PREDICT_KWARGS`` (a batch job's ``Environment``) and per request from the CustomAttributes
header (``ag_predict_kwargs={...}``), which reaches ``transform_fn`` through ``context``.

Bad requests raise :class:`BadRequestError`: 400 (input, options), 406 (Accept), 415 (Content-Type).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

if str(Path(__file__).resolve().parent) not in sys.path:  # the kind modules ship beside this script
    sys.path.append(str(Path(__file__).resolve().parent))
import ag_kinds
import data_profile
from ag_kinds import BadRequestError, attr
from fast_csv import FAST_CSV_MAX_LINES, fast_csv_frame  # noqa: F401 - the serving API
from kind_tabular import SOLE_MEMBER_MAX_ROWS, sole_member  # noqa: F401 - the serving API

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


class LoadedModel:
    """The predictor and what each request needs, computed once by :func:`model_fn`.

    :param predictor_type: the model's kind (``ag_kinds``), which decides how it loads and scores.
    """

    def __init__(self, predictor: Any, predictor_type: str, summary: dict[str, Any]) -> None:
        self.predictor = predictor
        self.kind = ag_kinds.get(predictor_type)
        self.predictor_type = self.kind.name
        self.summary = summary
        label = attr(predictor, "label") or attr(predictor, "target") or summary.get("label") or "prediction"
        self.label = str(label)
        self.problem_type = str(attr(predictor, "problem_type") or summary.get("problem_type") or "")
        self.features: list[str] = []
        self.can_predict_proba = False
        #: A classifier's classes (an array in ``predict_proba``'s column order) and decision threshold.
        self.class_labels: list[Any] = []
        self.class_array: Any = None
        self.decision_threshold: float | None = None
        self.kind.serving_state(self)
        self.feature_set = frozenset(self.features)
        try:
            names = self.kind.model_names(predictor)
        except Exception:  # older predictors: the summary may still list them
            names = None
        self.model_names: list[str] = [str(n) for n in (names or summary.get("model_names") or [])]
        #: Options for every request (a batch transform's environment); a request's own add to them.
        self.default_options = check_options(self, _json_env(OPTIONS_ENV), OPTIONS_ENV)
        self._scoring_model: str | None | bool = False  # not decided yet
        self.profiler: Any = None  # a batch transform's (data_profile.batch_profiler), set by model_fn

    @property
    def scoring_model(self) -> str | None:
        """The model scored when a request names none (see ``kind_tabular.sole_member``); ``None``: the best.

        Decided on the first small request, not at load: the check predicts, and a batch transform
        forks its workers after loading, before anything may start OpenMP's threads (which a fork
        breaks).
        """
        if self._scoring_model is False:
            self._scoring_model = self.kind.scoring_model(self)
        return self._scoring_model if isinstance(self._scoring_model, str) else None

    def __repr__(self) -> str:
        return f"LoadedModel({self.predictor_type}, label={self.label!r}, {len(self.features)} features)"


_json_env = ag_kinds.env_json


def media_type(value: str | None) -> str:
    """``"Text/CSV; charset=utf-8"`` -> ``"text/csv"``."""
    return (value or "").split(";", 1)[0].strip().lower()


def _format(value: str | None) -> str:
    kind = media_type(value)
    return _ALIASES.get(kind, kind)


# --------------------------------------------------------------------------- loading


def model_fn(model_dir: str) -> LoadedModel:
    """Load the predictor once; called by the model server before the first request."""
    summary = ag_kinds.read_summary(model_dir)
    kind = ag_kinds.get(summary.get("predictor_type"))
    print(f"Loading {kind.name} predictor from {model_dir}", flush=True)
    model = LoadedModel(kind.load(str(model_dir)), kind.name, summary)
    # A batch transform asked to profile: each request's rows and answers are sketched as scored.
    model.profiler = data_profile.batch_profiler(model_dir, kind)
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
        if key not in model.kind.predict_options:
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


def predict(model: LoadedModel, frame: Any, options: dict[str, Any] | None = None) -> pd.DataFrame:
    """The answer frame: the prediction named after the label, then ``<class>_proba`` columns (a
    forecast for a time-series model: ``item_id``, ``timestamp``, ``mean`` and quantiles).

    :param frame: the request's input, as :func:`prepare` read it.
    :param options: checked prediction options (default: the model's, from ``AG_PREDICT_KWARGS``).
    """
    options = model.default_options if options is None else options
    try:
        return model.kind.predict(model, frame, options)
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


def read_rows(model: LoadedModel, request_body: Any, content_type: str | None) -> pd.DataFrame:
    """A body's rows, aligned to the model's features (the fast reader first, for small CSV)."""
    frame = fast_csv_frame(model, request_body, content_type)
    if frame is None:
        frame = align(model, parse(model, request_body, content_type))
    return frame


def prepare(model: LoadedModel, request_body: Any, content_type: str, accept: str) -> tuple[Any, str]:
    """A request's input as its kind reads it, and the answer type; :class:`BadRequestError` if bad."""
    kind = _answer_type(accept)  # fail fast: before parsing or predicting
    return model.kind.read_request(model, request_body, content_type, read_rows), kind


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
        key = tuple(str(t) for t in frame.dtypes) if model.kind.combinable else (f"#{i}",)
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
    answers = predict(model, frame, options)
    if model.profiler is not None:
        model.profiler.add(model, frame, answers)
    return encode(answers, kind), kind
