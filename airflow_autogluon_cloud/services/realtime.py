"""Real-time prediction: requests to an endpoint under the SageMaker runtime contract.

Answers come back as Parquet (the prediction named after the label, then ``<class>_proba``
columns), so types survive the trip; frames larger than one request are sent in slices.
Prediction options (:mod:`~airflow_autogluon_cloud.predict_options`) travel in SageMaker's
CustomAttributes header; the endpoint checks them against its model and answers 400 if they do
not apply (:class:`~airflow_autogluon_cloud.exceptions.EndpointInvocationError`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import predict_options
from airflow_autogluon_cloud.backends.base import Backend
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds import SERIES, ModelSummary

if TYPE_CHECKING:
    import pandas as pd

#: SageMaker's real-time payload limit is 6 MB; slices stay under 5 MB of CSV.
_MAX_REQUEST_BYTES = 5 * 1024 * 1024


def split_proba(frame: pd.DataFrame) -> pd.DataFrame | pd.Series:
    """Per-class probabilities from a ``[prediction, <class>_proba, ...]`` frame.

    For regression (no probability columns) this is the prediction Series, as in AutoGluon Cloud.
    """
    proba_columns = [c for c in frame.columns[1:] if str(c).endswith("_proba")]
    if not proba_columns:
        return frame.iloc[:, 0]
    proba = frame[proba_columns].copy()
    proba.columns = [str(c)[: -len("_proba")] for c in proba_columns]
    return proba


@dataclass
class RealtimeService:
    """Sends data to an endpoint and reads its answers.

    :param backend: where the endpoint runs.
    """

    backend: Backend

    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str = "text/csv",
        accept: str = "application/json",
        predict_kwargs: dict[str, Any] | None = None,
    ) -> bytes:
        """Send one raw request to the endpoint and return the body.

        :param predict_kwargs: prediction options (``decision_threshold``, ``model``, ``as_multiclass``).
        """
        attributes = predict_options.custom_attributes(predict_options.validate(predict_kwargs))
        return self.backend.invoke_endpoint(endpoint_name, body, content_type, accept, attributes).body

    def predict_frame(
        self, endpoint_name: str, data: Any, predict_kwargs: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """The endpoint's answer frame for ``data`` (a DataFrame or a CSV path)."""
        import pandas as pd

        from airflow_autogluon_cloud.kinds.images import PARQUET_ENVELOPE, encode_envelope, image_columns_of

        options = predict_options.validate(predict_kwargs)  # before reading or sending anything
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_file():
                raise InvalidParameterError("data", str(data), "no such CSV file; pass a DataFrame or a CSV path.")
            data = pd.read_csv(path)
        if not hasattr(data, "to_csv") or len(data) == 0:
            raise InvalidParameterError("data", type(data).__name__, "pass a non-empty DataFrame or CSV path.")
        images = image_columns_of(data)
        if images:
            # Paths mean nothing to the endpoint: the files' bytes travel in the request.
            body = encode_envelope(data, images)
            if len(body) > _MAX_REQUEST_BYTES:
                raise InvalidParameterError(
                    "data",
                    f"{len(body) / 1e6:.1f} MB",
                    "a real-time request carries at most 5 MB: send fewer images.",
                )
            raw = self.invoke(endpoint_name, body, PARQUET_ENVELOPE, "application/x-parquet", options)
            return pd.read_parquet(io.BytesIO(raw))
        body = data.to_csv(index=False).encode()
        slices = max(1, -(-len(body) // _MAX_REQUEST_BYTES))
        parts = []
        step = -(-len(data) // slices)
        for start in range(0, len(data), step):
            chunk = data.iloc[start : start + step]
            raw = self.invoke(
                endpoint_name, chunk.to_csv(index=False).encode(), "text/csv", "application/x-parquet", options
            )
            parts.append(pd.read_parquet(io.BytesIO(raw)))
        return pd.concat(parts, ignore_index=True)

    def forecast(
        self,
        endpoint_name: str,
        history: Any,
        known_covariates: Any = None,
        static_features: Any = None,
        predict_kwargs: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """A time-series endpoint's forecast: ``item_id``, ``timestamp``, ``mean`` and one column per quantile.

        One request, a JSON envelope of the three frames (see ``container/kind_timeseries.py``),
        answered as Parquet so types survive; a series is never split across requests.
        """
        import pandas as pd

        from airflow_autogluon_cloud.kinds.series_io import envelope

        options = predict_options.validate(predict_kwargs)
        for parameter, value in (
            ("history", history),
            ("known_covariates", known_covariates),
            ("static_features", static_features),
        ):
            if value is not None and not hasattr(value, "to_dict"):
                raise InvalidParameterError(parameter, type(value).__name__, "pass a DataFrame.")
        if history is None or len(history) == 0:
            raise InvalidParameterError("history", history, "pass the history of every item to forecast.")
        body = envelope(history, known_covariates, static_features)
        if len(body) > _MAX_REQUEST_BYTES:
            raise InvalidParameterError(
                "history",
                f"{len(body) / 1e6:.1f} MB",
                "a real-time request carries at most 5 MB: forecast fewer items per call, or batch them.",
            )
        raw = self.invoke(endpoint_name, body, "application/json", "application/x-parquet", options)
        return pd.read_parquet(io.BytesIO(raw))

    def answers(
        self,
        endpoint_name: str,
        data: Any,
        summary: ModelSummary,
        *,
        predict_proba: bool = False,
        predict_kwargs: dict[str, Any] | str | None = None,
        known_covariates: Any = None,
        static_features: Any = None,
    ) -> tuple[Any, int]:
        """The endpoint's answers to ``data`` as the served model's kind gives them, and how many
        answer rows that kind owes for ``data`` (one per row; a forecast's horizon per item).

        :param summary: the served model's summary (its kind and, for a forecast, its layout).
        """
        import pandas as pd

        kind = summary.kind
        options = predict_options.validate(predict_kwargs)  # a dict or a JSON object string; its shape
        if kind.batch_split != SERIES:
            predict = self.predict_proba if predict_proba else self.predict
            answers = predict(endpoint_name, data, options)
            frame = data if hasattr(data, "__len__") and not isinstance(data, (str, os.PathLike)) else None
            return answers, (kind.answer_rows(frame, summary.to_dict()) if frame is not None else len(answers))
        if predict_proba:
            raise InvalidParameterError("predict_proba", True, f"{kind.name} models answer forecasts, not classes.")
        if isinstance(data, (str, os.PathLike)):
            if not Path(data).is_file():
                raise InvalidParameterError("data", str(data), "no such CSV file; pass a DataFrame or a CSV path.")
            data = pd.read_csv(data)
        answers = self.forecast(endpoint_name, data, known_covariates, static_features, options)
        return answers, kind.answer_rows(data, summary.to_dict())

    def predict(self, endpoint_name: str, data: Any, predict_kwargs: dict[str, Any] | None = None) -> pd.Series:
        """Predictions for ``data`` as a Series named after the label."""
        return self.predict_frame(endpoint_name, data, predict_kwargs).iloc[:, 0]

    def predict_proba(
        self, endpoint_name: str, data: Any, predict_kwargs: dict[str, Any] | None = None
    ) -> pd.DataFrame | pd.Series:
        """Class probabilities, one column per class (the predictions Series for regression)."""
        return split_proba(self.predict_frame(endpoint_name, data, predict_kwargs))
