"""Data checks: a model's baseline, and a batch's report against it.

Each model carries its baseline (``statistics.json`` and ``constraints.json``, in SageMaker Model
Monitor's shape), written by ``train.py`` beside ``training_summary.json``. A batch transform
asked to check its data (``AG_DATA_PROFILE_URI`` in its environment) profiles every request as it
scores it, in the serving script, and writes one small sketch per request under
``<output>/data_profile/parts/`` with a copy of the baseline under ``data_profile/baseline/``;
SageMaker splits the input into requests, so no process ever sees the whole batch. When the job
is done, :meth:`MonitoringService.batch_report` merges the sketches (sums of counts on the
baseline's fixed bins: exact, whatever the split), compares them with the baseline
(``container/data_checks.py``) and writes ``statistics.json``, ``constraint_violations.json``
and ``drift.json`` next to the output. Both backends do exactly this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airflow_autogluon_cloud.backends.specs import DATA_PROFILE_ENV
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.storage import StorageLocator, join_uri

#: The environment variable that makes the serving script profile a batch (data_profile.PROFILE_ENV).
PROFILE_ENV = DATA_PROFILE_ENV
PROFILE_DIR = "data_profile"
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
DRIFT_FILE = "drift.json"
#: Columns whose metrics a batch report's summary carries (the full statistics are in the file).
MAX_COLUMN_METRICS = 50


def check_options(value: Any) -> dict[str, Any]:
    """``data_check_options`` validated against the checks' defaults (``data_checks.DEFAULTS``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameterError("data_check_options", value, "give a dict, e.g. {'js_threshold': 0.2}.")
    from airflow_autogluon_cloud.container import data_checks

    try:
        data_checks.options(value)
    except ValueError as err:
        raise InvalidParameterError("data_check_options", value, f"{err}.") from None
    return value


def column_metrics(statistics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per input column of ``statistics.json``: ``count``, ``nullCount`` and, as known, ``min``,
    ``max``, ``sum`` and ``distinctCount`` (OpenLineage's ``ColumnMetrics`` names), for the XCom and
    lineage; the first :data:`MAX_COLUMN_METRICS` columns only, so the XCom stays small."""
    out: dict[str, dict[str, float]] = {}
    for feature in statistics.get("features", [])[:MAX_COLUMN_METRICS]:
        stats = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = stats.get("common") or {}
        present, missing = int(common.get("num_present") or 0), int(common.get("num_missing") or 0)
        metrics: dict[str, float] = {"count": present + missing, "nullCount": missing}
        for key, name in (("min", "min"), ("max", "max"), ("sum", "sum"), ("distinct_count", "distinctCount")):
            if isinstance(stats.get(key), (int, float)):
                metrics[name] = stats[key]
        out[str(feature["name"])] = metrics
    return out


@dataclass
class MonitoringService:
    """Baselines and data-check reports.

    :param storage: the storage for any URI.
    :param log: the task log.
    """

    storage: StorageLocator
    log: TaskLog
    #: reads a model's baseline (for :meth:`check_capture`).
    models: Any = None

    def _read_json(self, uri: str) -> dict[str, Any] | None:
        storage = self.storage(uri)
        if not storage.exists(uri):
            return None
        data: dict[str, Any] = json.loads(storage.read_bytes(uri))
        return data

    def _write_json(self, uri: str, data: dict[str, Any]) -> None:
        self.storage(uri).upload_bytes(json.dumps(data, indent=1, default=str).encode(), uri)

    @staticmethod
    def profile_uri(output_path: str) -> str:
        """Where a batch's per-request sketches go (the serving script's ``AG_DATA_PROFILE_URI``)."""
        return join_uri(output_path, PROFILE_DIR)

    def batch_report(self, output_path: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Merge a batch's sketches, check them against the baseline, write the reports; the summary.

        :param output_path: the transform job's output prefix.
        :param options: the checks' thresholds and switches (``data_checks.DEFAULTS``).
        :return: ``status`` (``checked``, ``no_baseline`` or ``not_profiled``), ``violations`` (the
            count), ``checks`` (check name -> columns), ``drifted_columns``, ``rows`` and the reports' URIs.
        """
        from airflow_autogluon_cloud.container import data_checks, data_profile

        prefix = self.profile_uri(output_path)
        storage = self.storage(prefix)
        uris = [u for u in storage.list(join_uri(prefix, data_profile.PARTS_DIR)) if u.endswith(".json")]
        if not uris:
            return {"status": "not_profiled", "violations": 0, "checks": {}, "drifted_columns": []}
        total = data_profile.merge([json.loads(storage.read_bytes(uri)) for uri in sorted(uris)])
        statistics_uri = join_uri(output_path, STATISTICS_FILE)
        statistics = data_profile.statistics(total)
        self._write_json(statistics_uri, statistics)
        result: dict[str, Any] = {
            "rows": total["item_count"],
            "statistics_uri": statistics_uri,
            "column_metrics": column_metrics(statistics),
        }
        baseline = self._read_json(join_uri(prefix, data_profile.BASELINE_DIR, STATISTICS_FILE))
        if baseline is None:
            self.log.warning("The model has no baseline (trained before baselines existed): nothing to check")
            return {**result, "status": "no_baseline", "violations": 0, "checks": {}, "drifted_columns": []}
        constraints = self._read_json(join_uri(prefix, data_profile.BASELINE_DIR, CONSTRAINTS_FILE))
        violations, drift = data_checks.compare(
            data_profile.sketch_from_statistics(baseline), constraints, total, options
        )
        violations_uri, drift_uri = join_uri(output_path, VIOLATIONS_FILE), join_uri(output_path, DRIFT_FILE)
        self._write_json(violations_uri, violations)
        self._write_json(drift_uri, drift)
        found = data_checks.summary(violations)
        return {
            **result,
            "status": "checked",
            "violations": found["count"],
            "checks": found["checks"],
            "drifted_columns": drift["drifted_columns"],
            "violations_uri": violations_uri,
            "drift_uri": drift_uri,
        }

    def read_report(self, output_path: str) -> dict[str, Any] | None:
        """A checked batch's ``constraint_violations.json`` (``None`` if it was not checked)."""
        return self._read_json(join_uri(output_path, VIOLATIONS_FILE))

    def report_summary(self, output_path: str) -> dict[str, Any] | None:
        """What a checked batch found, from the report beside its output: the violation count, the
        columns per violated check, and where the report is (``None`` if it was not checked)."""
        from airflow_autogluon_cloud.container import data_checks

        violations = self.read_report(output_path)
        if violations is None:
            return None
        found = data_checks.summary(violations)
        return {
            "violations": found["count"],
            "checks": found["checks"],
            "violations_uri": join_uri(output_path, VIOLATIONS_FILE),
        }

    def check_capture(
        self,
        endpoint_name: str,
        *,
        model_uri: str,
        destination: str,
        since: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run the batch checks on an endpoint's captured requests and answers (its data capture).

        :param model_uri: the model the endpoint serves (its baseline is the reference).
        :param destination: the capture's ``destination`` given at deploy.
        :param since: only captures at or after this time (epoch seconds; default all).
        :return: the summary (``status``, ``rows``, ``requests``, ``violations``, ``checks``,
            ``drifted_columns``) with the full ``constraint_violations`` and ``drift`` reports.
        """
        import pandas as pd

        from airflow_autogluon_cloud.container import data_checks, data_profile

        baseline = self.models.baseline(model_uri) if self.models is not None else None
        if baseline is None:
            return {"status": "no_baseline", "rows": 0, "requests": 0, "violations": 0, "checks": {}}
        reference = data_profile.sketch_from_statistics(baseline["statistics"])
        features = list(reference["features"])
        root = join_uri(destination, endpoint_name, "AllTraffic")
        rows, answers, requests = [], [], 0
        for uri in sorted(u for u in self.storage(root).list(root) if u.endswith(".jsonl")):
            for line in self.storage(uri).read_bytes(uri).decode("utf-8").splitlines():
                event = json.loads(line) if line.strip() else None
                if event is None or (since is not None and _event_time(event) < since):
                    continue
                data = event["captureData"]
                rows.append(_captured_frame(data["endpointInput"], features))
                answers.append(_captured_frame(data["endpointOutput"], []))
                requests += 1
        if not rows:
            return {"status": "no_captures", "rows": 0, "requests": 0, "violations": 0, "checks": {}}
        frame, answered = pd.concat(rows, ignore_index=True), pd.concat(answers, ignore_index=True)
        categorical = tuple(n for n, c in reference["predictions"].items() if "values" in c)
        total = data_profile.sketch(frame, answered, reference, categorical)
        violations, drift = data_checks.compare(reference, baseline["constraints"], total, options)
        found = data_checks.summary(violations)
        return {
            "status": "checked",
            "rows": total["item_count"],
            "requests": requests,
            "violations": found["count"],
            "checks": found["checks"],
            "drifted_columns": drift["drifted_columns"],
            "constraint_violations": violations,
            "drift": drift,
        }


def _event_time(event: dict[str, Any]) -> float:
    import calendar
    import time

    stamp = event.get("eventMetadata", {}).get("inferenceTime", "")
    return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))) if stamp else 0.0


def _captured_frame(captured: dict[str, Any], features: list[str]) -> Any:
    """One captured body (``CSV``/``JSON`` text or ``BASE64``) as rows; a CSV without a header gets
    the model's features in training order, as the serving script reads it."""
    import base64
    import io

    import pandas as pd

    data = captured.get("data", "")
    kind = str(captured.get("observedContentType", "")).split(";", 1)[0].strip().lower()
    if captured.get("encoding") == "BASE64":
        raw = base64.b64decode(data)
        if "parquet" in kind:
            return pd.read_parquet(io.BytesIO(raw))
        data = raw.decode("utf-8")
    if kind == "text/csv":
        first = data.lstrip().split("\n", 1)[0].split(",")
        if features and not any(value.strip() in features for value in first):
            return pd.read_csv(io.StringIO(data), header=None, names=features)
        return pd.read_csv(io.StringIO(data))
    if kind in ("application/jsonl", "application/jsonlines"):
        return pd.read_json(io.StringIO(data), lines=True)
    payload = json.loads(data)
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    return pd.DataFrame(payload if isinstance(payload, list) else [payload])
