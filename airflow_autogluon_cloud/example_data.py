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


#: The weekly-demand example's columns.
DEMAND_ID, DEMAND_TIME, DEMAND_TARGET, DEMAND_PROMO = "store_item", "week", "demand", "promo"


def make_weekly_demand(
    items: int, weeks: int, seed: int = 0, horizon: int = 0, start: str = "2022-01-02"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Weekly demand per item with a yearly season, a trend, and a promotion that lifts sales.

    :param horizon: weeks after the history for which the promotion plan is known (the known
        covariates a forecast needs).
    :return: ``(history, future_promotions, static_features)``: the history has one row per item
        and week (``store_item``, ``week``, ``demand``, ``promo``); the future frame has the
        ``promo`` plan for the ``horizon`` weeks after it; static features one row per item
        (``region``, ``base_level``).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    weeks_all = pd.date_range(start, periods=weeks + horizon, freq="W")
    t = np.arange(weeks + horizon)
    histories, futures, statics = [], [], []
    for i in range(items):
        item = f"item_{i:04d}"
        level = float(rng.uniform(20, 200))
        region = REGIONS[i % len(REGIONS)]
        season = 1 + 0.25 * np.sin(2 * np.pi * (t + rng.integers(0, 52)) / 52.0)
        promo = (rng.random(len(t)) < 0.15).astype(int)
        demand = level * season * (1 + 0.002 * t) * (1 + 0.4 * promo) + rng.normal(0, 0.05 * level, len(t))
        frame = pd.DataFrame(
            {DEMAND_ID: item, DEMAND_TIME: weeks_all, DEMAND_TARGET: demand.clip(0).round(3), DEMAND_PROMO: promo}
        )
        histories.append(frame.iloc[:weeks])
        futures.append(frame.iloc[weeks:][[DEMAND_ID, DEMAND_TIME, DEMAND_PROMO]])
        statics.append({DEMAND_ID: item, "region": region, "base_level": round(level, 1)})
    return (
        pd.concat(histories, ignore_index=True),
        pd.concat(futures, ignore_index=True),
        pd.DataFrame(statics),
    )


_GOOD = ("great", "lovely", "excellent", "superb", "delightful", "wonderful", "fine", "pleasant")
_BAD = ("awful", "terrible", "broken", "poor", "dreadful", "horrible", "useless", "nasty")
_FILLER = ("the", "product", "was", "really", "quite", "service", "delivery", "and", "item", "very")


def make_reviews(rows: int, seed: int = 0) -> pd.DataFrame:
    """Short product reviews for the multimodal (text) examples and tests.

    Columns: ``review`` (text whose sentiment words decide the label), ``stars`` (1-5, following the
    sentiment: a regression target), ``shop`` (a category), ``price`` (a number) and ``sentiment``
    (``pos`` / ``neg``, alternating row by row).
    """
    import random

    import pandas as pd

    rng = random.Random(seed)
    records = []
    for i in range(rows):
        positive = i % 2 == 0
        words = rng.sample(_FILLER, 4) + rng.sample(_GOOD if positive else _BAD, 2)
        rng.shuffle(words)
        records.append(
            {
                "review": " ".join(words),
                "stars": rng.choice([4, 5]) if positive else rng.choice([1, 2]),
                "shop": rng.choice(["north", "south"]),
                "price": round(rng.uniform(5, 50), 2),
                "sentiment": "pos" if positive else "neg",
            }
        )
    return pd.DataFrame.from_records(records)
