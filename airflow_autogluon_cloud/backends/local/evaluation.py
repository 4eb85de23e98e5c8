"""A local evaluation job: ``evaluate.py`` under the training contract, with the models unpacked.

The runner lays out ``/opt/ml``, materialises the channels (the labelled data, the arguments, the
code and one ``model_<key>`` channel per ``model.tar.gz``) and runs the entry script, exactly as
for training. Before the script starts, each model archive is unpacked here with
:func:`~airflow_autogluon_cloud.archives.safe_extract` (no absolute paths, no ``..``, no links
out), so the script loads a directory. On SageMaker the channel holds the archive itself and
``evaluate.py`` unpacks it. The report leaves in ``output.tar.gz``, uploaded atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from airflow_autogluon_cloud.backends.local.jobkit import log
from airflow_autogluon_cloud.backends.specs import MODEL_CHANNEL_PREFIX


class TrainingContractRun(Protocol):
    """The runner as this body needs it (:class:`.runner.Runner`; not imported: no cycle)."""

    def run_training(self, prepare_inputs: Callable[[Path], None] | None = None) -> None: ...


def unpack_model_channels(input_data: Path) -> None:
    """Replace each ``model_<key>/model.tar.gz`` by its safely extracted contents."""
    from airflow_autogluon_cloud.archives import safe_extract

    for channel in sorted(input_data.glob(f"{MODEL_CHANNEL_PREFIX}*")):
        for archive in sorted(channel.glob("*.tar.gz")):
            log("Unpacking %s into channel %s", archive.name, channel.name)
            safe_extract(archive, channel)
            archive.unlink()


def run_evaluation(runner: TrainingContractRun) -> None:
    """The body of an evaluation job."""
    runner.run_training(prepare_inputs=unpack_model_channels)
