"""AGPredictOperator: a few real-time predictions against an endpoint (a smoke test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud import predict_options
from airflow_autogluon_cloud.exceptions import EndpointError
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGPredictOperator(AutoGluonCloudBaseOperator):
    """Send ``data`` to an endpoint and fail unless it answers every row the served model's kind owes:
    one per input row, or for a forecast ``prediction_length`` rows per item (the endpoint's
    model summary says which).

    XCom: ``endpoint_name``, ``rows``, and ``predictions`` (the first ``max_rows_in_xcom`` answers;
    with ``predict_proba``, one dict of class probabilities per row; for a forecast, ``item_id``,
    ``timestamp``, ``mean`` and the quantiles).

    :param endpoint_name: the endpoint, or the deploy task's XCom dict. (templated)
    :param data: a CSV path (or a DataFrame); for a forecast, the whole history of each item. (templated)
    :param known_covariates: a forecast's known covariates for the horizon (a DataFrame). (templated)
    :param static_features: a forecast's static features, one row per item (a DataFrame). (templated)
    :param predict_proba: ask for class probabilities.
    :param predict_kwargs: prediction options: ``decision_threshold`` (binary models), ``model`` (a
        name from the leaderboard), ``as_multiclass``; sent in SageMaker's CustomAttributes header.
        A dict or a JSON object string. (templated)
    :param max_rows_in_xcom: answers kept in XCom (keep it small).
    """

    template_fields: Sequence[str] = (
        *CONNECTION_TEMPLATE_FIELDS,
        "endpoint_name",
        "data",
        "predict_kwargs",
        "known_covariates",
        "static_features",
    )

    def __init__(
        self,
        *,
        endpoint_name: Any,
        data: Any,
        predict_proba: bool = False,
        predict_kwargs: dict[str, Any] | str | None = None,
        max_rows_in_xcom: int = 10,
        known_covariates: Any = None,
        static_features: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.data = data
        self.predict_proba = predict_proba
        self.predict_kwargs = predict_kwargs
        self.max_rows_in_xcom = max_rows_in_xcom
        self.known_covariates = known_covariates
        self.static_features = static_features

    def execute(self, context: Context) -> dict[str, Any]:
        name = str(
            self.endpoint_name.get("endpoint_name") if isinstance(self.endpoint_name, dict) else self.endpoint_name
        )
        predict_options.validate(self.predict_kwargs)  # names and values, before asking the endpoint anything
        summary = self.hook.endpoints.served_summary(name)  # the kind decides how many rows are due
        answers, expected = self.hook.realtime.answers(
            name,
            self.data,
            summary,
            predict_proba=self.predict_proba,
            predict_kwargs=self.predict_kwargs,
            known_covariates=self.known_covariates,
            static_features=self.static_features,
        )
        rows = len(answers)
        if rows == 0 or rows != expected:
            raise EndpointError(name, f"answered {rows} rows where {expected} were due")
        head = answers.head(self.max_rows_in_xcom)
        if hasattr(head, "columns"):  # small JSON: timestamps as text
            predictions = head.round(4).astype(
                {c: str for c in head.columns if str(head[c].dtype).startswith("datetime")}
            )
            predictions = predictions.to_dict(orient="records")
        else:
            predictions = head.tolist()
        self.log.info("Endpoint %s answered %d rows; first: %s", name, rows, predictions[:3])
        return {"endpoint_name": name, "rows": rows, "predictions": predictions}
