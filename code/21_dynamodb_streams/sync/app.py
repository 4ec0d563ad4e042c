"""Pattern 21: keep an Aurora read model in step with a DynamoDB table, through its stream.

Lambda hands the function batches of stream records, oldest first. Each record is one change
of one sale: INSERT and MODIFY upsert its row, REMOVE deletes it. Values travel as typed Data
API parameters (revenue as an exact DECIMAL), never inside the SQL text. A sale that cannot be
synced fails the whole batch, unless PARTIAL_BATCH_RESPONSE is "true": then it is reported
on its own in `batchItemFailures` and Lambda retries from that record only.
"""

import os
from decimal import Decimal

import boto3

DATA_API = boto3.client("rds-data")
CLUSTER_ARN = os.environ["CLUSTER_ARN"]
SECRET_ARN = os.environ["SECRET_ARN"]
DATABASE = os.environ.get("DATABASE", "labdb")
PARTIAL_BATCH_RESPONSE = os.environ.get("PARTIAL_BATCH_RESPONSE", "false") == "true"

SCHEMA = """CREATE TABLE IF NOT EXISTS sales_analytics (
    sale_id VARCHAR(36) PRIMARY KEY,
    customer_id VARCHAR(20),
    product VARCHAR(100) NOT NULL,
    quantity INT NOT NULL,
    revenue DECIMAL(10, 2) NOT NULL,
    region VARCHAR(30) NOT NULL,
    sale_date DATE NOT NULL
)"""
UPSERT = """INSERT INTO sales_analytics
    (sale_id, customer_id, product, quantity, revenue, region, sale_date)
VALUES (:sale_id, :customer_id, :product, :quantity, :revenue, :region, :sale_date)
ON DUPLICATE KEY UPDATE
    customer_id = VALUES(customer_id), product = VALUES(product),
    quantity = VALUES(quantity), revenue = VALUES(revenue),
    region = VALUES(region), sale_date = VALUES(sale_date)"""
DELETE = "DELETE FROM sales_analytics WHERE sale_id = :sale_id"
_schema_ready = False  # once per execution environment, not on every batch


def execute(sql, parameters=()):
    """Run one statement on the cluster through the Data API."""
    return DATA_API.execute_statement(
        resourceArn=CLUSTER_ARN,
        secretArn=SECRET_ARN,
        database=DATABASE,
        sql=sql,
        parameters=list(parameters),
    )


def sale_parameters(image):
    """Typed parameters from a DynamoDB image; KeyError or ValueError for a malformed sale."""
    quantity = int(image["quantity"]["N"])  # a quantity stored as text fails here
    revenue = Decimal(image["revenue"]["N"]).quantize(Decimal("0.01"))
    return [
        {"name": "sale_id", "value": {"stringValue": image["saleId"]["S"]}},
        {"name": "customer_id", "value": {"stringValue": image["customerId"]["S"]}},
        {"name": "product", "value": {"stringValue": image["product"]["S"]}},
        {"name": "quantity", "value": {"longValue": quantity}},
        # DECIMAL travels as a string with a type hint: exact cents, no float rounding.
        {"name": "revenue", "value": {"stringValue": str(revenue)}, "typeHint": "DECIMAL"},
        {"name": "region", "value": {"stringValue": image["region"]["S"]}},
        {"name": "sale_date", "value": {"stringValue": image["saleDate"]["S"]}, "typeHint": "DATE"},
    ]


def sync(record):
    """Apply one change to the read model; upserts and deletes can safely run twice."""
    if record["eventName"] == "REMOVE":
        sale_id = record["dynamodb"]["Keys"]["saleId"]["S"]
        execute(DELETE, [{"name": "sale_id", "value": {"stringValue": sale_id}}])
    else:  # INSERT or MODIFY: the item as it is now
        execute(UPSERT, sale_parameters(record["dynamodb"]["NewImage"]))


def handler(event, context):
    """Sync a batch in order; report (or raise on) the records that cannot be synced."""
    global _schema_ready
    if not _schema_ready:
        execute(SCHEMA)
        _schema_ready = True
    records = event["Records"]
    first, last = (r["dynamodb"]["SequenceNumber"] for r in (records[0], records[-1]))
    print(f"batch of {len(records)} records, sequence numbers {first} to {last}")
    failures = []
    for record in records:
        try:
            sync(record)
        except (KeyError, ValueError, ArithmeticError) as error:  # bad data, not an outage
            sequence = record["dynamodb"]["SequenceNumber"]
            print(f"cannot sync record {sequence}: {type(error).__name__}: {error}")
            if not PARTIAL_BATCH_RESPONSE:
                raise
            failures.append({"itemIdentifier": sequence})
    return {"batchItemFailures": failures}
