"""How often to ask for a job's status: start at the check interval, back off to a ceiling.

Shared by the blocking wait, the trigger and the sensors, so all three cost the same number of
status calls per hour. The ceiling defaults to four times the check interval: a 30 s interval
settles at one call every two minutes, a quarter of a fixed 30 s poll.
"""

from __future__ import annotations

import random

BACKOFF_FACTOR = 1.5
DEFAULT_CEILING_FACTOR = 4.0


def max_interval(check_interval: float, max_check_interval: float | None = None) -> float:
    return max_check_interval if max_check_interval else check_interval * DEFAULT_CEILING_FACTOR


def next_interval(current: float, ceiling: float) -> float:
    """The next sleep: grow by :data:`BACKOFF_FACTOR`, capped, with a little jitter."""
    grown = min(current * BACKOFF_FACTOR, ceiling)
    return grown * random.uniform(0.9, 1.0)


def interval_after(elapsed: float, check_interval: float, ceiling: float) -> float:
    """The interval the backoff has reached after ``elapsed`` seconds of waiting (no jitter).

    A trigger rebuilt after a triggerer restart resumes at this interval instead of starting
    over at ``check_interval``, so a restart costs one status call, not a burst of them.
    """
    interval = float(check_interval)
    waited = 0.0
    while interval < ceiling and waited + interval <= elapsed:
        waited += interval
        interval = min(interval * BACKOFF_FACTOR, ceiling)
    return interval


def wait_deadline(created_at: float | None, max_runtime: int | None, slack_seconds: float, now: float) -> float | None:
    """Wall-clock time after which the job cannot still be legitimately running.

    :param slack_seconds: time allowed past the job's own maximum runtime (provisioning,
        downloads, upload); each backend says how much it needs (``Backend.wait_slack_seconds``).
    """
    if not max_runtime:
        return None
    return (created_at or now) + max_runtime + slack_seconds
