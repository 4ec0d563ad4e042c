"""The targets `make bench` is held to, each with the issue that set it, and their verdicts.

A target is a bound on one figure (`<=` for a time, `>=` for a rate or a ratio) or a check on
counts (no errors, nothing lost). Figures without a target are printed as "no target".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """A bound on one figure: `value <= limit` (most=True) or `value >= limit`."""

    limit: float
    unit: str
    most: bool
    source: str

    def text(self) -> str:
        """'<= 1.5 ms (issue 18)'."""
        sign = "<=" if self.most else ">="
        return f"{sign} {self.limit:g} {self.unit} ({self.source})".replace(" x ", "x ")

    def met(self, value: float) -> bool:
        """Whether `value` is within the bound."""
        return value <= self.limit if self.most else value >= self.limit


TARGETS: dict[str, Target] = {
    "lambda_warm_p50": Target(1.5, "ms", True, "issue 18"),
    "lambda_rate_echo": Target(1000, "/s", False, "issue 18"),
    "lambda_rate_printing": Target(800, "/s", False, "issue 18"),
    "dynamodb_get_p50": Target(0.8, "ms", True, "issue 18"),
    "dynamodb_put_p50": Target(0.8, "ms", True, "issue 18"),
    "data_api_select_p50": Target(2.0, "ms", True, "issue 18"),
    "rds_proxy_added_p50": Target(0.2, "ms", True, "issue 12"),
    "stream_lag_p50": Target(250, "ms", True, "issue 13"),
    "cache_hit_p50": Target(0.3, "ms", True, "issue 14"),
    "cache_lambda_miss_over_hit": Target(5, "x", False, "issue 14"),
    "rest_crud_get_p50": Target(8, "ms", True, "issue 16"),
}


def verdict(key: str | None, value: float | None) -> dict[str, Any]:
    """The target's text and whether `value` meets it; 'no target' when there is none."""
    if key is None or key not in TARGETS:
        return {"target": "no target", "met": None}
    target = TARGETS[key]
    return {"target": target.text(), "met": value is not None and target.met(value)}


def check(text: str, met: bool) -> dict[str, Any]:
    """A target that is a check on counts rather than a bound on a figure."""
    return {"target": text, "met": met}


def met_text(met: bool | None) -> str:
    """The table's cell: 'yes', 'NO' or '' when there is no target."""
    return "" if met is None else ("yes" if met else "NO")
