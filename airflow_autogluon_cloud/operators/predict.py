"""AGPredictOperator: a few real-time predictions against an endpoint (a smoke test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.exceptions import EndpointError
from airflow_autogluon_cloud.operators.base import CONNECTION_TEMPLATE_FIELDS, AutoGluonCloudBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AGPredictOperator(AutoGluonCloudBaseOperator):
    """Send ``data`` to an endpoint and fail unless every row gets an answer.

    XCom: ``endpoint_name``, ``rows``, and ``predictions`` (the first ``max_rows_in_xcom`` answers;
    with ``predict_proba``, one dict of class probabilities per row).

    :param endpoint_name: the endpoint, or the deploy task's XCom dict. (templated)
    :param data: a CSV path (or a DataFrame). (templated)
    :param predict_proba: ask for class probabilities.
    :param predict_kwargs: prediction options: ``decision_threshold`` (binary models), ``model`` (a
        name from the leaderboard), ``as_multiclass``; sent in SageMaker's CustomAttributes header.
        A dict or a JSON object string. (templated)
    :param max_rows_in_xcom: answers kept in XCom (keep it small).
    """

    template_fields: Sequence[str] = (*CONNECTION_TEMPLATE_FIELDS, "endpoint_name", "data", "predict_kwargs")

    def __init__(
        self,
        *,
        endpoint_name: Any,
        data: Any,
        predict_proba: bool = False,
        predict_kwargs: dict[str, Any] | str | None = None,
        max_rows_in_xcom: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.data = data
        self.predict_proba = predict_proba
        self.predict_kwargs = predict_kwargs
        self.max_rows_in_xcom = max_rows_in_xcom

    def execute(self, context: Context) -> dict[str, Any]:
        name = str(
            self.endpoint_name.get("endpoint_name") if isinstance(self.endpoint_name, dict) else self.endpoint_name
        )
        predict = self.hook.predict_proba_real_time if self.predict_proba else self.hook.predict_real_time
        answers = predict(name, self.data, predict_kwargs=self.predict_kwargs)
        rows = len(answers)
        expected = len(self.data) if hasattr(self.data, "__len__") and not isinstance(self.data, str) else None
        if rows == 0 or (expected is not None and rows != expected):
            raise EndpointError(name, f"answered {rows} rows for {expected} sent")
        head = answers.head(self.max_rows_in_xcom)
        predictions = head.round(4).to_dict(orient="records") if hasattr(head, "columns") else head.tolist()
        self.log.info("Endpoint %s answered %d rows; first: %s", name, rows, predictions[:3])
        return {"endpoint_name": name, "rows": rows, "predictions": predictions}
