"""What a notebook costs on AWS: per-pattern estimates priced with the services' list prices.

Each service module declares its prices next to its own code (`PRICES`, AWS's public list
prices in us-east-1, https://aws.amazon.com/pricing/); they change, so every estimate says it
is an estimate. The local backend costs nothing. Estimates are per pattern (a notebook), so
they are listed here, one entry per notebook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from . import catalog
from .report import Table


@dataclass(frozen=True)
class Price:
    """A unit price in US dollars."""

    usd: float
    unit: str
    note: str = ""


HOURS_PER_MONTH = 730


@functools.cache
def prices() -> dict[str, Price]:
    """Every service's declared prices, by name."""
    found: dict[str, Price] = {}
    for module in catalog.modules():
        found.update(getattr(module, "PRICES", {}))
    return found


@dataclass(frozen=True)
class CostLine:
    """One priced item of an estimate."""

    item: str
    price: str
    quantity: float
    when: str  # "run" (one pass of the notebook) or "idle month" (teardown forgotten)

    @property
    def usd(self) -> float:
        """Quantity times unit price."""
        return prices()[self.price].usd * self.quantity


def _aurora_data_api(min_acu: float = 0.0) -> list[CostLine]:
    """Pattern 19: the burst makes thousands of calls; idle cost depends on the minimum ACU."""
    calls = 4000  # on AWS a 5-minute burst of 6 callers, ~0.5 s a call, plus the checks
    idle = (
        CostLine(
            "Aurora paused all month (MIN_ACU 0: auto-pause after 5 idle minutes, storage only)",
            "aurora_acu_hour",
            0.0,
            "idle month",
        )
        if min_acu == 0
        else CostLine(
            f"Aurora at its minimum {min_acu:g} ACU all month (it never pauses)",
            "aurora_acu_hour",
            min_acu * HOURS_PER_MONTH,
            "idle month",
        )
    )
    return [
        CostLine(
            "Aurora Serverless v2: ~1.5 ACU on average for ~0.75 h (create, query, a 5-minute "
            "burst up to 4 ACU, cool-down)",
            "aurora_acu_hour",
            1.5 * 0.75,
            "run",
        ),
        CostLine(
            f"Lambda requests (~{calls:,} invokes)", "lambda_million_requests", calls / 1e6, "run"
        ),
        CostLine(
            f"Lambda compute: ~{calls:,} invokes x 256 MB x ~0.5 s",
            "lambda_gb_second",
            calls * 0.25 * 0.5,
            "run",
        ),
        CostLine(
            f"Data API requests (~{calls:,}, one per invoke)",
            "data_api_million_requests",
            calls / 1e6,
            "run",
        ),
        idle,
        CostLine(
            "Aurora storage: a few MB of tables (negligible)",
            "aurora_storage_gb_month",
            0.01,
            "idle month",
        ),
    ]


# Per-pattern estimates: what one run uses and what stays billed if teardown is forgotten.
ESTIMATES: dict[str, list[CostLine] | Callable[..., list[CostLine]]] = {
    "00": [
        CostLine("DynamoDB writes and reads (a handful)", "dynamodb_million_writes", 1e-5, "run"),
        CostLine(
            "one custom metric for about an hour",
            "cloudwatch_metric_month",
            1 / HOURS_PER_MONTH,
            "run",
        ),
        CostLine("an empty on-demand table", "dynamodb_gb_month", 0.0, "idle month"),
    ],
    "16": [
        CostLine(
            "ECR storage of a ~200 MB image for about an hour",
            "ecr_gb_month",
            0.2 / HOURS_PER_MONTH,
            "run",
        ),
        CostLine("Lambda requests (~100 invokes)", "lambda_million_requests", 100 / 1e6, "run"),
        CostLine(
            "Lambda compute: ~100 invokes x 512 MB x ~1 s (cold starts included)",
            "lambda_gb_second",
            100 * 0.5 * 1.0,
            "run",
        ),
        CostLine("ECR storage of the ~200 MB image", "ecr_gb_month", 0.2, "idle month"),
    ],
    "17": [
        CostLine(
            "Fargate vCPU: ~5 tasks x 0.25 vCPU x 1 min (1-minute minimum billing)",
            "fargate_vcpu_hour",
            5 * 0.25 / 60,
            "run",
        ),
        CostLine(
            "Fargate memory: ~5 tasks x 0.5 GB x 1 min",
            "fargate_gb_hour",
            5 * 0.5 / 60,
            "run",
        ),
        CostLine(
            "public IPv4 address of each task while it runs (~5 x 1 min)",
            "public_ipv4_hour",
            5 / 60,
            "run",
        ),
        CostLine(
            "ECR storage of a ~150 MB image for about an hour",
            "ecr_gb_month",
            0.15 / HOURS_PER_MONTH,
            "run",
        ),
        CostLine("S3: a few small JSON results (negligible)", "s3_gb_month", 1e-6, "run"),
        CostLine(
            "ECR storage of the ~150 MB image (tasks stop by themselves: no compute)",
            "ecr_gb_month",
            0.15,
            "idle month",
        ),
        CostLine(
            "CloudWatch Logs: the tasks' log lines kept (well under 1 MB)",
            "logs_gb_month",
            0.001,
            "idle month",
        ),
    ],
    "18": [
        CostLine("Application Load Balancer for ~0.5 h", "alb_hour", 0.5, "run"),
        CostLine("ALB capacity units: a light load, ~1 LCU for ~0.5 h", "alb_lcu_hour", 0.5, "run"),
        CostLine(
            "Fargate vCPU: 2 tasks x 0.25 vCPU x ~0.5 h", "fargate_vcpu_hour", 2 * 0.25 * 0.5, "run"
        ),
        CostLine(
            "Fargate memory: 2 tasks x 0.5 GB x ~0.5 h", "fargate_gb_hour", 2 * 0.5 * 0.5, "run"
        ),
        CostLine(
            # The ALB spans every default subnet: 6 in us-east-1, each with a public address.
            "public IPv4: 2 tasks + 6 ALB nodes (one per default subnet) for ~0.5 h",
            "public_ipv4_hour",
            8 * 0.5,
            "run",
        ),
        CostLine("HTTP API requests (~500)", "http_api_million_requests", 500 / 1e6, "run"),
        CostLine("DynamoDB writes and reads (~500)", "dynamodb_million_writes", 500 / 1e6, "run"),
        CostLine("the ALB left running for a month", "alb_hour", HOURS_PER_MONTH, "idle month"),
        CostLine(
            "2 tasks left running for a month (0.25 vCPU)",
            "fargate_vcpu_hour",
            2 * 0.25 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "2 tasks left running for a month (0.5 GB)",
            "fargate_gb_hour",
            2 * 0.5 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "8 public IPv4 addresses for a month (2 tasks, 6 ALB nodes)",
            "public_ipv4_hour",
            8 * HOURS_PER_MONTH,
            "idle month",
        ),
    ],
    "19": _aurora_data_api,
    "20": [
        CostLine(
            "Aurora Serverless v2: ~1 ACU on average for ~0.5 h (or pattern 19's cluster)",
            "aurora_acu_hour",
            1 * 0.5,
            "run",
        ),
        CostLine(
            "RDS Proxy for ~0.5 h, billed at its 8-ACU minimum",
            "rds_proxy_acu_hour",
            8 * 0.5,
            "run",
        ),
        CostLine(
            "Lambda requests (~600 invokes: two storms, warm-ups, checks)",
            "lambda_million_requests",
            600 / 1e6,
            "run",
        ),
        CostLine(
            "Lambda compute: ~600 invokes x 256 MB x ~30 s (warm-ups wait for each other)",
            "lambda_gb_second",
            600 * 0.25 * 30,
            "run",
        ),
        CostLine(
            "RDS Proxy left running for a month (8-ACU minimum)",
            "rds_proxy_acu_hour",
            8 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "Aurora kept at 0.5 ACU all month: a proxy's connections stop it from auto-pausing",
            "aurora_acu_hour",
            0.5 * HOURS_PER_MONTH,
            "idle month",
        ),
    ],
    "21": [
        CostLine(
            "Aurora Serverless v2: ~1 ACU on average for ~0.5 h (or pattern 19's cluster)",
            "aurora_acu_hour",
            1 * 0.5,
            "run",
        ),
        CostLine(
            "DynamoDB on-demand writes (~500 sales, updates and deletes)",
            "dynamodb_million_writes",
            500 / 1e6,
            "run",
        ),
        CostLine(
            "Lambda requests (~150: writer calls and stream batches; stream reads are free)",
            "lambda_million_requests",
            150 / 1e6,
            "run",
        ),
        CostLine(
            "Lambda compute: ~150 invokes x 256 MB x ~1 s",
            "lambda_gb_second",
            150 * 0.25 * 1.0,
            "run",
        ),
        CostLine("SQS: a few on-failure records (negligible)", "sqs_million_requests", 1e-5, "run"),
        CostLine(
            "Aurora at its minimum 0.5 ACU all month (with min 0 ACU + auto-pause: ~$0 "
            "while paused, storage only)",
            "aurora_acu_hour",
            0.5 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "a small on-demand table (a few hundred items; the stream costs nothing idle)",
            "dynamodb_gb_month",
            0.001,
            "idle month",
        ),
    ],
    "22": [
        CostLine(
            "Aurora Serverless v2: ~1 ACU on average for ~0.5 h (or pattern 19's cluster)",
            "aurora_acu_hour",
            1 * 0.5,
            "run",
        ),
        CostLine(
            "RDS Proxy for ~0.5 h (8-ACU minimum; none if pattern 20's proxy is reused)",
            "rds_proxy_acu_hour",
            8 * 0.5,
            "run",
        ),
        CostLine(
            "Fargate: 2 tasks x 0.25 vCPU for ~0.5 h (two deployments included)",
            "fargate_vcpu_hour",
            2 * 0.25 * 0.5,
            "run",
        ),
        CostLine(
            "Fargate memory: 2 tasks x 0.5 GB x ~0.5 h", "fargate_gb_hour", 2 * 0.5 * 0.5, "run"
        ),
        CostLine("the ALB for ~0.5 h", "alb_hour", 0.5, "run"),
        CostLine(
            "public IPv4: 2 tasks + 6 ALB nodes (one per default subnet) for ~0.5 h",
            "public_ipv4_hour",
            8 * 0.5,
            "run",
        ),
        CostLine(
            "Secrets Manager: the app user's secret, prorated", "secret_month", 0.5 / 730, "run"
        ),
        CostLine("the ALB left running for a month", "alb_hour", HOURS_PER_MONTH, "idle month"),
        CostLine(
            "2 tasks left running for a month (0.25 vCPU, 0.5 GB each)",
            "fargate_vcpu_hour",
            2 * 0.25 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "their memory for a month", "fargate_gb_hour", 2 * 0.5 * HOURS_PER_MONTH, "idle month"
        ),
        CostLine(
            "8 public IPv4 addresses for a month (2 tasks, 6 ALB nodes)",
            "public_ipv4_hour",
            8 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "RDS Proxy for a month, if this notebook made it (8-ACU minimum)",
            "rds_proxy_acu_hour",
            8 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "Aurora kept at 0.5 ACU all month: the tasks' open connections stop auto-pause",
            "aurora_acu_hour",
            0.5 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine("the app user's secret for a month", "secret_month", 1, "idle month"),
    ],
    "23": [
        CostLine(
            "ElastiCache Serverless (Valkey): the 100 MB minimum of data stored for ~1 h",
            "valkey_serverless_gb_hour",
            0.1 * 1,
            "run",
        ),
        CostLine(
            "ElastiCache ECPUs: a few thousand commands of at most a few KB",
            "valkey_serverless_million_ecpu",
            0.01,
            "run",
        ),
        CostLine(
            "RDS Proxy for ~1 h (8-ACU minimum; none if pattern 20's proxy is reused)",
            "rds_proxy_acu_hour",
            8 * 1,
            "run",
        ),
        CostLine(
            "Aurora Serverless v2: ~1 ACU for ~0.5 h (or pattern 19's cluster)",
            "aurora_acu_hour",
            1 * 0.5,
            "run",
        ),
        CostLine(
            "Lambda requests and compute: ~100 invokes x 256 MB x ~2 s (the timeouts of the "
            "failing handler included)",
            "lambda_gb_second",
            100 * 0.25 * 2,
            "run",
        ),
        CostLine(
            "the cache left for a month: its 100 MB minimum is billed even when empty",
            "valkey_serverless_gb_hour",
            0.1 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine(
            "RDS Proxy left running for a month (8-ACU minimum)",
            "rds_proxy_acu_hour",
            8 * HOURS_PER_MONTH,
            "idle month",
        ),
    ],
    "24": [
        CostLine(
            "RDS for PostgreSQL db.t4g.micro, Single-AZ, for ~0.5 h",
            "rds_postgres_t4g_micro_hour",
            0.5,
            "run",
        ),
        CostLine(
            "20 GiB of gp3 storage for ~0.5 h",
            "rds_gp3_gb_month",
            20 * 0.5 / HOURS_PER_MONTH,
            "run",
        ),
        CostLine(
            "Secrets Manager interface endpoint in 2 Availability Zones for ~0.5 h",
            "interface_endpoint_az_hour",
            2 * 0.5,
            "run",
        ),
        CostLine(
            "REST API requests (~300: the walkthrough, the checks, a 200-request load)",
            "rest_api_million_requests",
            300 / 1e6,
            "run",
        ),
        CostLine(
            "Lambda requests (~700: each API call invokes a function and the executor)",
            "lambda_million_requests",
            700 / 1e6,
            "run",
        ),
        CostLine(
            "Lambda compute: ~700 invokes x 256-512 MB x ~0.1 s (cold starts included)",
            "lambda_gb_second",
            700 * 0.4 * 0.1,
            "run",
        ),
        CostLine(
            "ECR storage of three images (~0.3 GB) for about an hour",
            "ecr_gb_month",
            0.3 / HOURS_PER_MONTH,
            "run",
        ),
        CostLine(
            "the instance left running for a month",
            "rds_postgres_t4g_micro_hour",
            HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine("its 20 GiB of gp3 storage", "rds_gp3_gb_month", 20, "idle month"),
        CostLine("the managed master secret", "secret_month", 1, "idle month"),
        CostLine(
            "the interface endpoint (2 Availability Zones) for a month",
            "interface_endpoint_az_hour",
            2 * HOURS_PER_MONTH,
            "idle month",
        ),
        CostLine("ECR storage of the three images (~0.3 GB)", "ecr_gb_month", 0.3, "idle month"),
    ],  # fmt: skip
}


def estimate_lines(pattern: str, **settings: float) -> list[CostLine]:
    """The priced items of a pattern's estimate, for these notebook settings."""
    found = ESTIMATES[pattern]
    return found(**settings) if callable(found) else found


def estimate(pattern: str, **settings: float) -> pd.DataFrame:
    """The pattern's estimated AWS cost: one row per item, plus totals for run and idle month.

    `settings` are the notebook's parameters an estimate depends on (19: `min_acu`).
    """
    lines = estimate_lines(pattern, **settings)
    rows = [
        {
            "when": line.when,
            "item": line.item,
            "unit price": _describe(line.price),
            "usd": round(line.usd, 4),
        }
        for line in lines
    ]
    for when in ("run", "idle month"):
        total = sum(line.usd for line in lines if line.when == when)
        rows.append({"when": when, "item": "TOTAL", "unit price": "", "usd": round(total, 4)})
    table = Table(rows)
    table.hide_index = True  # row numbers mean nothing here; items are shown uncut
    return table


def _describe(price_key: str) -> str:
    """A price as '$0.12 per ACU-hour'."""
    price = prices()[price_key]
    return f"${price.usd:g} per {price.unit}"
