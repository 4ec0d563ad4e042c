"""The course's helpers: one module per AWS service, plus the lab, naming and teardown.

Start every notebook with `lab = helpers.connect(BACKEND, region=REGION, run_id=RUN_ID)`.
"""

from . import (
    aurora,
    cleanup,
    cloudwatch,
    costs,
    dynamodb,
    ecr,
    ecs,
    iam,
    images,
    lambda_,
    localcloud,
    logs,
    naming,
    preflight,
    rds_data,
    s3,
    waiting,
)
from .lab import Lab, connect

__all__ = [
    "Lab",
    "aurora",
    "cleanup",
    "cloudwatch",
    "connect",
    "costs",
    "dynamodb",
    "ecr",
    "ecs",
    "iam",
    "images",
    "lambda_",
    "localcloud",
    "logs",
    "naming",
    "preflight",
    "rds_data",
    "s3",
    "waiting",
]
