"""The main DAG under a real Airflow: a scheduler, a triggerer, an API server and a DAG processor as
separate processes, run by its schedule and by hand (``airflow dags trigger``: no logical date).

``dag.test()`` runs triggers in the test process and always sets a logical date; here the fit's
trigger is rebuilt from ``serialize()`` in the triggerer process, as in every real deployment.
"""

from __future__ import annotations

import pytest

from tests.deployment.conftest import DAG_ID, assert_run_succeeded_the_deployed_way

pytestmark = [pytest.mark.deployment, pytest.mark.slow]


def test_the_scheduled_catch_up_run_succeeds(unpaused):
    scheduled = unpaused.wait_until(
        "the scheduler's catch-up run",
        lambda: [r["dag_run_id"] for r in unpaused.runs(DAG_ID) if r["run_type"] == "scheduled"],
        timeout=180,
    )[0]
    assert_run_succeeded_the_deployed_way(unpaused, scheduled)


def test_a_run_triggered_by_hand_has_no_logical_date_and_succeeds(unpaused):
    manual = "manual__deployment-test"
    unpaused.trigger(DAG_ID, manual)
    assert_run_succeeded_the_deployed_way(unpaused, manual)
    [run] = [r for r in unpaused.runs(DAG_ID) if r["dag_run_id"] == manual]
    assert run["logical_date"] is None  # what Airflow 3 gives a run triggered by hand
