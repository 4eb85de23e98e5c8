"""The statuses a trigger's event carries. ``execute_complete`` returns only on ``success``.

A module of its own so operators can check events without importing the triggers (and
``airflow.triggers.base``) at DAG-parse time.
"""

SUCCESS = "success"
FAILED = "failed"
STOPPED = "stopped"
TIMEOUT = "timeout"
NOT_FOUND = "not_found"
ERROR = "error"
