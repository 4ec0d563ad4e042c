"""Cost estimates: prices are collected from the service modules that declare them."""

from __future__ import annotations

import pytest

from helpers import costs, ecs, lambda_


def test_prices_come_from_the_service_modules():
    prices = costs.prices()
    assert prices["fargate_vcpu_hour"] is ecs.tasks.PRICES["fargate_vcpu_hour"]
    assert prices["lambda_gb_second"] is lambda_.PRICES["lambda_gb_second"]


@pytest.mark.parametrize("pattern", sorted(costs.ESTIMATES))
def test_every_estimate_is_priced_and_totals_its_lines(pattern):
    table = costs.estimate(pattern)
    lines = costs.estimate_lines(pattern)
    assert all(line.price in costs.prices() for line in lines)
    totals = table[table["item"] == "TOTAL"].set_index("when")["usd"]
    for when in ("run", "idle month"):
        expected = sum(line.usd for line in lines if line.when == when)
        assert totals[when] == pytest.approx(round(expected, 4))
    assert (table["usd"] >= 0).all()


def test_the_aurora_estimate_follows_the_minimum_capacity():
    def idle(**settings: float) -> float:
        table = costs.estimate("19", **settings)
        return table[(table["item"] == "TOTAL") & (table["when"] == "idle month")]["usd"].iloc[0]

    assert idle() < 0.01  # MIN_ACU 0: paused, storage only
    assert idle(min_acu=0.5) == pytest.approx(0.5 * costs.HOURS_PER_MONTH * 0.12, abs=0.01)
