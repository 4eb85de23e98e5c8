"""Apache Airflow provider for AutoGluon's cloud lifecycle (train, deploy, predict, clean up).

Nothing heavy is imported here: Airflow imports provider modules while parsing DAG files.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
