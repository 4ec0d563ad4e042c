"""The course's helpers: one module per AWS service, plus the lab, naming and teardown.

Start every notebook with `lab = helpers.connect(BACKEND, region=REGION, run_id=RUN_ID)`.
"""

from . import (
    apigatewayv2,
    aurora,
    cleanup,
    cloudwatch,
    costs,
    dynamodb,
    ec2,
    ecr,
    ecs,
    elbv2,
    iam,
    images,
    lambda_,
    logs,
    naming,
    pacing,
    preflight,
    rds_data,
    s3,
    waiting,
    web,
)
from .lab import Lab, connect

__all__ = [
    "Lab",
    "apigatewayv2",
    "aurora",
    "cleanup",
    "cloudwatch",
    "connect",
    "costs",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "iam",
    "images",
    "lambda_",
    "logs",
    "naming",
    "pacing",
    "preflight",
    "rds_data",
    "s3",
    "waiting",
    "web",
]
