"""Pattern 24 end to end: GET one customer through the REST API, warm.

The notebook's stack, made with the same helpers and the same code (code/24_rest_api_postgres/):
an RDS for PostgreSQL instance with its managed secret, the query executor in the VPC (with a
Secrets Manager endpoint), the customers function, and a REST API deployed to `prod`. One
keep-alive client then sends GET /customers/BENCH01 back to back: API Gateway -> customers
function -> executor -> PostgreSQL (TLS verified) and back. Every answer is checked (status
200 and the customer's id), so a fast error cannot pass for a fast answer.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .timing import timings

CODE = Path(__file__).resolve().parents[1] / "code" / "24_rest_api_postgres"
CUSTOMER = {"customer_id": "BENCH01", "customer_name": "Bench Mark", "email": "b@example.com"}


def _deploy(lab: Any) -> str:
    """The notebook's resources for the customers routes; the stage's base URL."""
    import helpers

    network = helpers.rds_postgres.ensure_network(lab, "24")
    db = helpers.rds_postgres.ensure_instance(
        lab, "24", "bench-db", network=network, database="shop"
    )
    helpers.ec2.ensure_interface_endpoint(
        lab, "24", "secretsmanager", vpc_id=network.vpc_id, subnet_ids=network.subnet_ids,
        client_group_id=network.client_group_id,
    )  # fmt: skip
    images = {}
    for part in ("executor", "customers-api"):
        repository = helpers.ecr.ensure_repository(lab, "24", f"bench-{part}")
        context = CODE / part
        if part == "executor":
            context = helpers.rds_postgres.build_context_with_ca(lab, context)
        images[part] = helpers.images.build_and_push(lab, repository, context, tag="v1").image_uri
    settings = {"DB_HOST": db.address, "DB_PORT": str(db.port), "DB_NAME": db.database,
                "DB_SECRET_ARN": db.secret_arn}  # fmt: skip
    functions = {}
    for name, statement_set in (("bench-executor", "crud"), ("bench-migrator", "migrations")):
        role = helpers.iam.ensure_role(
            lab, "24", f"{name}-role", service="lambda",
            statements=[
                *helpers.iam.vpc_access_statements(
                    lab, network.subnet_ids, [network.client_group_id]
                ),
                *helpers.iam.secret_read_statements(db.secret_arn),
            ],
        )  # fmt: skip
        functions[name] = helpers.lambda_.ensure_function(
            lab, "24", name, role_arn=role["Arn"], image_uri=images["executor"],
            memory_mb=512, timeout_s=15, environment={**settings, "STATEMENT_SET": statement_set},
            subnet_ids=network.subnet_ids, security_group_ids=[network.client_group_id],
        )  # fmt: skip
    migrated = helpers.lambda_.invoke(
        lab, functions["bench-migrator"]["FunctionName"], {"statement": "migrate", "params": {}}
    )
    if not migrated.ok or "rows" not in migrated.payload:
        raise RuntimeError(f"benchmark setup: the migration failed: {migrated.payload}")
    executor_arn = functions["bench-executor"]["FunctionArn"]
    role = helpers.iam.ensure_role(
        lab, "24", "bench-customers-role", service="lambda",
        statements=helpers.iam.invoke_statements([executor_arn]),
    )  # fmt: skip
    customers = helpers.lambda_.ensure_function(
        lab, "24", "bench-customers", role_arn=role["Arn"], image_uri=images["customers-api"],
        memory_mb=256, timeout_s=15, environment={"QUERY_EXECUTOR_FUNCTION": executor_arn},
    )  # fmt: skip
    arn = customers["FunctionArn"]
    api = helpers.apigateway.ensure_rest_api(
        lab, "24", "bench-api",
        routes={"POST /customers": arn, "GET /customers/{customer_id}": arn},
    )  # fmt: skip
    base = lab.url_for(api, "prod")
    created = helpers.web.request("POST", f"{base}/customers", CUSTOMER)
    if created.status not in (201, 409):
        raise RuntimeError(f"benchmark setup: POST /customers answered {created.status}")
    return base


def bench_rest_crud(lab: Any) -> dict[str, Any]:
    """p50/p99 of a warm GET of one customer through the whole stack, one keep-alive client."""
    try:
        base = _deploy(lab)
    except Exception as error:  # a figure that cannot be measured says why
        return {"get_customer": {"error": f"{type(error).__name__}: {error}"}}
    parts = urlsplit(f"{base}/customers/{CUSTOMER['customer_id']}")
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)

    def get() -> None:
        connection.request("GET", parts.path)
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or json.loads(body)["customer"]["customer_id"] != "BENCH01":
            raise RuntimeError(f"GET answered {answer.status}: {body[:200]!r}")

    try:
        return {"get_customer": timings(get, 300, warmup=20)}
    finally:
        connection.close()
