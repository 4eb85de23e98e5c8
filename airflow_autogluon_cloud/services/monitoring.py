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


@dataclass
class MonitoringService:
    """Baselines and data-check reports.

    :param storage: the storage for any URI.
    :param log: the task log.
    """

    storage: StorageLocator
    log: TaskLog

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
        self._write_json(statistics_uri, data_profile.statistics(total))
        result: dict[str, Any] = {"rows": total["item_count"], "statistics_uri": statistics_uri}
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
