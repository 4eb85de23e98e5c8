"""A small synthetic customer-churn dataset for the example DAGs, tests and benchmarks.

Generated, not downloaded (these machines reach no dataset hub): numeric, categorical and
boolean features with a label that depends on them plus noise, so AutoGluon has something real to
learn and a better model scores measurably better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

LABEL = "churned"
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")


def make_churn(rows: int, seed: int = 0, with_label: bool = True) -> pd.DataFrame:
    """``rows`` customers; the same ``seed`` always gives the same frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    monthly = rng.normal(60, 20, rows).clip(10, 150).round(2)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(REGIONS, rows)
    tickets = rng.poisson(1.5, rows)
    autopay = rng.random(rows) < 0.55
    score = (
        -0.04 * tenure
        + 0.025 * (monthly - 60)
        + 0.45 * tickets
        - 0.9 * autopay
        + np.select([plan == "basic", plan == "premium"], [0.6, -0.5], 0.0)
        + rng.normal(0, 0.8, rows)
    )
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "plan": plan,
            "region": region,
            "support_tickets": tickets,
            "autopay": autopay,
        }
    )
    if with_label:
        frame[LABEL] = np.where(score > 0.2, "yes", "no")
    return frame
