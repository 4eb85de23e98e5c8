"""The kinds of job this provider runs, with the label people see.

One definition for every layer: the hook and services, both backends, the local state store and
runners, the triggers and the operators. Values are plain strings (a :class:`StrEnum`), so a kind
serialises into a trigger, a state row or a log line as ``"training"`` and parses back the same.
Imports nothing from Airflow: the local job runners use it too.
"""

from __future__ import annotations

from airflow_autogluon_cloud.vocabulary import Vocabulary


class JobKind(Vocabulary):
    """A job: training (fit), batch transform (batch prediction) or evaluation (scoring models on labelled data)."""

    TRAINING = "training"
    TRANSFORM = "transform"
    EVALUATION = "evaluation"
    __noun__ = "job kind"

    @property
    def label(self) -> str:
        """``"Training job"``: how errors and logs name a job of this kind."""
        return f"{self.value.capitalize()} job"


#: Not a job, but named by links, console URLs and trigger events the same way.
ENDPOINT = "endpoint"
