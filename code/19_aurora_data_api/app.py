"""Pattern 19: a Lambda function on Aurora Serverless v2 through the RDS Data API.

SQL travels over HTTPS with boto3's rds-data client: no VPC attachment, no database
driver, no connection to manage. The cluster, its secret and the database name come from
environment variables set at deployment. Actions: insert, list, aggregate, sales_report,
and crunch (CPU work inside the database, to make its capacity grow).
"""

import json
import os
import time
from decimal import Decimal, InvalidOperation

import boto3

DATA_API = boto3.client("rds-data")
CLUSTER_ARN = os.environ["CLUSTER_ARN"]
SECRET_ARN = os.environ["SECRET_ARN"]
DATABASE = os.environ.get("DATABASE", "labdb")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS products (
        id INT AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(100) NOT NULL,
        price DECIMAL(10, 2) NOT NULL,
        category VARCHAR(50) NOT NULL DEFAULT 'general',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )""",
    # Filled from DynamoDB by pattern 21; reported on here.
    """CREATE TABLE IF NOT EXISTS sales_analytics (
        sale_id VARCHAR(36) PRIMARY KEY,
        customer_id VARCHAR(20),
        product VARCHAR(100) NOT NULL,
        quantity INT NOT NULL,
        revenue DECIMAL(10, 2) NOT NULL,
        region VARCHAR(30) NOT NULL,
        sale_date DATE NOT NULL
    )""",
)
_schema_ready = False  # once per execution environment, not on every invocation
RESUME_WAIT_S = 40  # an auto-paused cluster answers DatabaseResumingException for ~15-30 s
MAX_CRUNCH_ROUNDS = 5_000_000


def execute(sql, parameters=()):
    """Run one statement; a SELECT's rows come back as JSON objects keyed by column.

    A cluster that auto-paused is resuming for the first seconds of a call: retry then.
    """
    deadline, pause = time.monotonic() + RESUME_WAIT_S, 1.0
    while True:
        try:
            return DATA_API.execute_statement(
                resourceArn=CLUSTER_ARN,
                secretArn=SECRET_ARN,
                database=DATABASE,
                sql=sql,
                parameters=list(parameters),
                formatRecordsAs="JSON",
            )
        except DATA_API.exceptions.DatabaseResumingException:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 8.0)


def rows(response):
    """The rows of a SELECT as a list of dicts."""
    return json.loads(response.get("formattedRecords") or "[]")


def handler(event, context):
    """Route the event to an action; bad input gets an error that names the field."""
    global _schema_ready
    if not _schema_ready:
        for statement in SCHEMA:
            execute(statement)
        _schema_ready = True
    actions = {
        "insert": insert,
        "list": list_products,
        "aggregate": aggregate,
        "sales_report": sales_report,
        "crunch": crunch,
    }
    action = event.get("action", "list") if isinstance(event, dict) else None
    if action not in actions:
        return {"error": f"unknown action {action!r}: use one of {', '.join(actions)}"}
    return actions[action](event)


def insert(event):
    """Insert one product; the values travel as parameters, never inside the SQL text."""
    name = event.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        return {"error": "name is required: a string of 1 to 100 characters", "field": "name"}
    price = _price(event.get("price"))
    if price is None:
        return {"error": "price must be a number of at least 0, e.g. 19.99", "field": "price"}
    category = event.get("category", "general")
    if not isinstance(category, str) or not category.strip() or len(category) > 50:
        return {"error": "category must be a string of 1 to 50 characters", "field": "category"}
    response = execute(
        "INSERT INTO products (name, price, category) VALUES (:name, :price, :category)",
        [
            {"name": "name", "value": {"stringValue": name.strip()}},
            # A DECIMAL travels as a string with a type hint: exact cents, no float rounding.
            {"name": "price", "value": {"stringValue": str(price)}, "typeHint": "DECIMAL"},
            {"name": "category", "value": {"stringValue": category.strip()}},
        ],
    )
    new_id = response["generatedFields"][0]["longValue"]
    return {"status": "inserted", "id": new_id, "product": name.strip()}


def list_products(event):
    """The 20 newest products."""
    found = rows(
        execute("SELECT id, name, price, category FROM products ORDER BY id DESC LIMIT 20")
    )
    return {"products": found, "count": len(found)}


def aggregate(event):
    """Count and price statistics per category."""
    summary = rows(
        execute(
            """SELECT category,
                      COUNT(*) AS product_count,
                      AVG(price) AS avg_price,
                      MIN(price) AS min_price,
                      MAX(price) AS max_price
               FROM products
               GROUP BY category
               ORDER BY product_count DESC, category"""
        )
    )
    return {"summary": summary}


def sales_report(event):
    """Revenue per region and product, from the sales table."""
    report = rows(
        execute(
            """SELECT region,
                      product,
                      COUNT(*) AS transactions,
                      SUM(quantity) AS total_units,
                      SUM(revenue) AS total_revenue,
                      AVG(revenue) AS avg_sale
               FROM sales_analytics
               GROUP BY region, product
               ORDER BY total_revenue DESC, region, product
               LIMIT 15"""
        )
    )
    return {"salesReport": report}


def crunch(event):
    """CPU work inside the database: SHA-256 `rounds` times with MySQL's BENCHMARK()."""
    rounds = event.get("rounds", 200_000)
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        return {"error": "rounds must be an integer, e.g. 200000", "field": "rounds"}
    if not 1 <= rounds <= MAX_CRUNCH_ROUNDS:
        return {"error": f"rounds must be from 1 to {MAX_CRUNCH_ROUNDS}", "field": "rounds"}
    execute(
        "SELECT BENCHMARK(:rounds, SHA2(:text, 256)) AS done",
        [
            {"name": "rounds", "value": {"longValue": rounds}},
            {"name": "text", "value": {"stringValue": "serverless"}},
        ],
    )
    return {"status": "crunched", "rounds": rounds}


def _price(value):
    """The price as an exact Decimal with two places, or None if it is not a valid price."""
    if isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    if not price.is_finite() or price < 0:
        return None
    return price.quantize(Decimal("0.01"))
